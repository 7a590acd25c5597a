#!/usr/bin/env bash
# t-setup: a repo's [setup] (commands run as root in a setup boot of their own, with the setup
# network) is a widening: refused until `devbox trust`, listed by `devbox profile check`; a
# setup host pre-approved in config.ini is not a widening.  The first start runs it, streaming
# "devbox: setup [N/M]: CMD" and the output to the client's stderr (kept for `devbox logs
# --setup`), then runs the command as the box user.  The result is a derived disk shared by
# every project with the same image and setup (no second run; listed by `devbox images`), a
# changed [setup] needs trust again and rebuilds the box's disk (the workspace kept), `devbox
# reset` starts over from the derived disk, `devbox setup --force` runs setup again, and
# `devbox image prune` removes derived disks nothing uses.  The busybox image: busybox wget
# through the allowlist proxy, no package manager.
. "$(dirname "$0")/lib.sh"

import_image
F=$TEST_TMP/files
mkdir -p "$F"
printf '#!/bin/sh\necho "tool ran as uid $(id -u)"\n' >"$F/tool"
HP=$(http_files "$F") || exit $?
R=$(make_repo proj)
cd "$R" || fail "cd $R"
TOOL_OUT="tool ran as uid $(box_uid)"

CMDS=(
    "mkdir -p /usr/local/bin /var/log"
    "wget -q -O /usr/local/bin/tool http://files.test:$HP/tool"
    "chmod 755 /usr/local/bin/tool"
    "date >> /var/log/setup-runs"
    "echo setup says hello"
)
# (the proxy connects to a loopback address only when allow names it: 127.0.0.1:PORT)
setup_ini() { # CMD...: the devbox.ini of the projects
    printf '[setup]\n%s\nnetwork = allowlist\nallow = files.test:%s, 127.0.0.1:%s\nresolve = files.test:127.0.0.1\n' \
        "$(setup_run "$@")" "$HP" "$HP"
}
INI=$(setup_ini "${CMDS[@]}")
write_profile "$R" "$INI"

# ---- untrusted: refused, naming every command and the setup host ----------------------------
expect_rc 125 dbx exec -- true
assert_one_line "$ERR" "refusal of an untrusted [setup]"
assert_contains "$ERR" "widens the default profile" "refusal of an untrusted [setup]"
for c in "${CMDS[@]}"; do
    assert_contains "$ERR" "setup runs '$c' as root" "refusal of an untrusted [setup]"
done
assert_contains "$ERR" "'files.test:$HP'" "refusal of an untrusted [setup]: the setup allow entries"
assert_contains "$ERR" "'127.0.0.1:$HP'" "refusal of an untrusted [setup]: the setup allow entries"
assert_eq "" "$OUT" "stdout of a refused exec"
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after the refusal (none may start)"
expect_rc 1 dbx profile check
for c in "${CMDS[@]}"; do
    assert_contains "$OUT$ERR" "setup runs '$c' as root" "profile check of an untrusted [setup]"
done

# config.ini [setup] allow pre-approves the hosts: no longer widenings (the commands still are)
mkdir -p "$DEVBOX_HOME/config"
printf '[setup]\nallow = files.test:%s, 127.0.0.1:%s\n' "$HP" "$HP" >"$DEVBOX_HOME/config/config.ini"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "setup runs '${CMDS[0]}' as root" "refusal with the setup hosts pre-approved in config.ini"
assert_not_contains "$ERR" "'files.test:$HP'" "refusal with files.test:$HP pre-approved in config.ini [setup] allow"
assert_not_contains "$ERR" "'127.0.0.1:$HP'" "refusal with 127.0.0.1:$HP pre-approved in config.ini [setup] allow"

ok dbx trust
ok dbx profile check
for c in "${CMDS[@]}"; do
    assert_contains "$OUT" "setup runs '$c' as root" "profile check after trust"
done

# ---- the first start runs setup, then the command as the box user ---------------------------
umask 077 # setup runs with 022 whatever the caller's (it builds a disk other projects share)
ok dbx exec -- tool
umask 022
assert_eq "$TOOL_OUT" "$OUT" "stdout of the first exec: the tool setup installed, run as the box user"
assert_setup_progress "$ERR" 5 "stderr of the first start" "${CMDS[@]}"
grep -qxF "devbox: setup [2/5]: ${CMDS[1]}" <<<"$ERR" ||
    fail "stderr of the first start: no line 'devbox: setup [2/5]: ${CMDS[1]}' in $(show "$ERR")"
after=$(printf '%s\n' "$ERR" | grep -A1 -F "setup [5/5]: ${CMDS[4]}" | sed -n 2p)
assert_eq "setup says hello" "$after" "the line after setup's progress line 5 (its output)"
ok dbx logs --setup
assert_setup_progress "$OUT" 5 "devbox logs --setup" "${CMDS[@]}"
assert_contains "$OUT" "setup says hello" "devbox logs --setup: the commands' output"
ok dbx exec -- sh -c 'stat -c "%u %a" /usr/local/bin/tool; grep -c "" /var/log/setup-runs'
assert_eq $'0 755\n1' "$OUT" "the tool's owner and mode, and setup runs recorded in the first box"
ok dbx exec -- stat -c %a /var/log/setup-runs
assert_eq 644 "$OUT" "a file setup made (umask 022, the caller's 077)"

# ---- a second project with the same image and setup reuses the derived disk ------------------
R2=$(make_repo proj2)
write_profile "$R2" "$INI"
expect_rc 125 dbx -C "$R2" exec -- true
assert_contains "$ERR" "setup runs '${CMDS[0]}' as root" "same [setup] in another, untrusted, repository"
ok dbx -C "$R2" trust
ok dbx -C "$R2" exec -- sh -c 'tool; grep -c "" /var/log/setup-runs'
assert_eq "$TOOL_OUT"$'\n1' "$OUT" "second project: the tool, and setup runs recorded (1: setup did not run again)"
assert_not_contains "$ERR" "setup [" "stderr of the second project's first start (setup must not run)"
ok dbx -C "$R2" logs --setup
assert_match "$(printf '%s' "$OUT" | tr '[:upper:]' '[:lower:]')" "reus" \
    "second project's devbox logs --setup: says it reused the derived disk"
ok dbx exec -- grep -c "" /var/log/setup-runs
assert_eq 1 "$OUT" "setup runs recorded in the first box after the second project started"

ok dbx images --json
IMAGES=$OUT
assert_eq 1 "$(json_get "$IMAGES" 'len([i for i in j if "+setup" in i["name"]])')" \
    "rows of devbox images --json whose name contains '+setup': $(show "$IMAGES")"
assert_eq true "$(json_get "$IMAGES" "sorted([i for i in j if '+setup' in i['name']][0]['used_by']) == sorted(['$R', '$R2'])")" \
    "the derived disk's used_by in devbox images --json (both projects): $(show "$IMAGES")"
ok dbx images
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '+setup')" "rows of devbox images whose name contains '+setup': $(show "$OUT")"

# ---- a changed [setup]: trust again, then the box's disk is rebuilt, the workspace kept -------
ok dbx exec --admin -- sh -c 'echo before > /admin-marker && id -u'
assert_eq 0 "$OUT" "devbox exec --admin runs as root"
ok dbx exec -- sh -c 'cat /admin-marker && echo kept > ws-file'
assert_eq before "$OUT" "the marker --admin wrote in /"
CMDS2=("${CMDS[@]}" "echo second version")
write_profile "$R" "$(setup_ini "${CMDS2[@]}")"
ok dbx stop # (proj2 keeps running)
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "setup runs 'echo second version' as root" "refusal of a changed [setup]"
ok dbx trust
ok dbx exec -- sh -c 'test -e /admin-marker && echo present || echo absent; cat ws-file; tool; grep -c "" /var/log/setup-runs'
assert_eq $'absent\nkept\n'"$TOOL_OUT"$'\n1' "$OUT" \
    "after a changed [setup]: the root disk's marker, the workspace file, the tool, setup runs"
assert_eq 1 "$(printf '%s\n' "$ERR" | grep -cF '[setup] changed')" \
    "lines saying '[setup] changed' in the start after the change: $(show "$ERR")"
assert_setup_progress "$ERR" 6 "stderr of the start after the change" "${CMDS2[@]}"
ok dbx -C "$R2" exec -- grep -c "" /var/log/setup-runs
assert_eq 1 "$OUT" "setup runs in the second project (its setup did not change)"

# ---- reset: back to the derived disk ----------------------------------------------------------
ok dbx exec --admin -- sh -c 'echo x > /root/reset-marker && cat /root/reset-marker'
assert_eq x "$OUT" "the marker --admin wrote in /root"
ok dbx reset --force
ok dbx exec -- sh -c 'tool; cat ws-file; grep -c "" /var/log/setup-runs'
assert_eq "$TOOL_OUT"$'\nkept\n1' "$OUT" "after reset: the tool, the workspace file, setup runs"
assert_not_contains "$ERR" "setup [" "stderr of the start after reset (setup must not run: the derived disk is kept)"
ok dbx exec --admin -- sh -c 'test -e /root/reset-marker && echo present || echo absent'
assert_eq absent "$OUT" "the /root marker after reset"

# ---- setup --force runs it again ----------------------------------------------------------------
ok dbx stop # (proj2 keeps running)
ok dbx setup --force
assert_setup_progress "$ERR" 6 "stderr of devbox setup --force" "${CMDS2[@]}"
ok dbx exec -- sh -c 'tool; cat ws-file'
assert_eq "$TOOL_OUT"$'\nkept' "$OUT" "after setup --force: the tool and the workspace file"

# ---- prune: derived disks nothing uses are removed ---------------------------------------------
derived=$(find "$DEVBOX_HOME" -name '*.qcow2' ! -path '*/projects/*' | LC_ALL=C sort)
[ -n "$derived" ] || fail "no derived disk (*.qcow2 outside the projects' directories) under $DEVBOX_HOME: $(find "$DEVBOX_HOME/data" -type f | head -n 20 | tr '\n' ' ')"
log "derived disks: $(printf '%s' "$derived" | tr '\n' ' ')"
# the second project was the last user of the build setup --force replaced: gc says which
ok dbx -C "$R2" rm --force
ok dbx gc --dry-run
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c 'would remove derived disk .*+setup-.* (an earlier build, not the one `devbox images` lists)$')" \
    "gc --dry-run's line for the earlier build: $(show "$OUT")"
assert_not_contains "$OUT" "would remove 1 project" "gc --dry-run with the first project in use"
ok dbx rm --force
assert_no_vm_procs 10
ok dbx image prune
ok dbx images --json
assert_eq 0 "$(json_get "$OUT" 'len([i for i in j if "+setup" in i["name"]])')" \
    "rows whose name contains '+setup' after rm of both projects and image prune: $(show "$OUT")"
left=$(find "$DEVBOX_HOME" -name '*.qcow2')
assert_eq "" "$left" "*.qcow2 files under DEVBOX_HOME after rm of both projects and image prune"
