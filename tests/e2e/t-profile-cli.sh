#!/usr/bin/env bash
# t-profile-cli: `devbox profile check` (0/1, every problem as file:line), `devbox profile show
# [--json]` (values with their origins), extends chains, refusals of bad files; an invalid
# devbox.ini stops `devbox exec` (125) before any VM starts.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# ---- no devbox.ini: the built-in default ---------------------------------------------------
ok dbx profile check
assert_eq ok "$OUT" "profile check without devbox.ini"
ok dbx profile show --json
js=$OUT
assert_eq 4096 "$(json_get "$js" 'j["limits"]["pids"]["value"]')" "default limits.pids"
assert_eq "built-in default" "$(json_get "$js" 'j["limits"]["pids"]["from"]')" "origin of the default limits.pids"
assert_eq default "$(json_get "$js" 'j["security"]["seccomp"]["value"]')" "default seccomp"
assert_eq '[".git/hooks", ".git/config", ".gitmodules", "devbox.ini", ".claude", ".codex", ".gemini", ".cursor", ".vscode", ".idea", ".mcp.json", ".envrc", ".husky", ".pre-commit-config.yaml", ".devcontainer", ".devcontainer.json", ".zed", ".helix", ".continue", ".roo", ".kiro", ".amazonq", "opencode.json", ".opencode", ".aider.conf.yml"]' \
    "$(json_get "$js" '[e["value"] for e in j["workspace"]["protect"]]')" "default protected paths"
ok dbx profile show
assert_match "$OUT" 'pids = 4096 +; built-in default' "profile show (text) without devbox.ini"
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '^pids = ')" "one 'pids =' line in profile show (text)"

# ---- a narrowing devbox.ini: values and origins --------------------------------------------
write_profile "$R" '# narrowing
[limits]
pids = 100
memory = 200M

[security]
seccomp = strict

[env]
FOO = bar'
ok dbx profile check
assert_eq ok "$OUT" "profile check of a narrowing devbox.ini"
ok dbx profile show --json
js=$OUT
assert_eq 100 "$(json_get "$js" 'j["limits"]["pids"]["value"]')" "limits.pids"
assert_eq devbox.ini:3 "$(json_get "$js" 'j["limits"]["pids"]["from"]')" "origin of limits.pids"
assert_eq $((200 << 20)) "$(json_get "$js" 'j["limits"]["memory"]["value"]')" "limits.memory"
assert_eq devbox.ini:4 "$(json_get "$js" 'j["limits"]["memory"]["from"]')" "origin of limits.memory"
assert_eq strict "$(json_get "$js" 'j["security"]["seccomp"]["value"]')" "security.seccomp"
assert_eq devbox.ini:7 "$(json_get "$js" 'j["security"]["seccomp"]["from"]')" "origin of security.seccomp"
assert_eq 65536 "$(json_get "$js" 'j["limits"]["nofile"]["value"]')" "limits.nofile (untouched)"
assert_eq "built-in default" "$(json_get "$js" 'j["limits"]["nofile"]["from"]')" "origin of limits.nofile"
hash1=$(json_get "$js" 'j["hash"]')
assert_match "$hash1" '^[0-9a-f]{64}$' "hash of devbox.ini"
assert_contains "$js" '"FOO"' "profile show --json: [env]"
ok dbx profile show
assert_match "$OUT" 'pids = 100 +; devbox.ini:3' "profile show (text): limits.pids"
assert_contains "$OUT" "$hash1" "profile show (text): the hash"
assert_match "$OUT" 'seccomp = strict +; devbox.ini:7' "profile show (text): seccomp"

# ---- every problem reported, one per line, as file:line --------------------------------------
write_profile "$R" '[limits]
pidz = 5
cpu = lots
[boxx]
a = 1
[security]
seccomp = maybe
seccomp = strict'
expect_rc 1 dbx profile check
errs=$ERR
assert_eq "" "$OUT" "stdout of a failed profile check"
assert_eq 5 "$(printf '%s\n' "$errs" | grep -c '^devbox\.ini:[0-9]*: ')" "problems reported as devbox.ini:LINE: (got $(show "$errs"))"
for want in "devbox.ini:2: .*pidz.*did you mean 'pids'" "devbox.ini:3: .*lots" "devbox.ini:4: .*boxx" \
    "devbox.ini:7: .*maybe" "devbox.ini:8: .*duplicate"; do
    grep -q "^$want" <<<"$errs" || fail "profile check: no line matching /^$want/ in $(show "$errs")"
done
# exec refuses it before starting anything
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "devbox.ini:2" "exec with an invalid devbox.ini"
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after exec with an invalid devbox.ini"
ok dbx status --json
assert_eq stopped "$(json_get "$OUT" 'j["state"]')" "state after exec with an invalid devbox.ini"

# more kinds of bad files
bad() { # WHAT EXPECTED-IN-STDERR
    expect_rc 1 dbx profile check
    assert_contains "$ERR" "$2" "profile check of $1"
    expect_rc 125 dbx exec -- true
}
write_profile "$R" $'[limits]\npids = -1'
bad "a negative number" "devbox.ini:2"
write_profile "$R" $'[box]\ncpus = 0'
bad "cpus = 0" "devbox.ini:2"
write_profile "$R" $'[security]\ncapabilities = cap_not_a_thing'
bad "an unknown capability" "devbox.ini:2"
write_profile "$R" $'[workspace]\nprotect = /etc/passwd'
bad "an absolute protected path" "devbox.ini:2"
write_profile "$R" $'[workspace]\nprotect = ../outside'
bad "a protected path outside the repo" "devbox.ini:2"
write_profile "$R" "[env]
K = $(head -c 300 /dev/zero | tr '\0' x)"
bad "a line over the length limit" "devbox.ini:2"
printf '[limits]\npids = 1\0\n' >"$R/devbox.ini"
bad "a NUL byte" "devbox.ini"
head -c $((65 * 1024)) /dev/zero | tr '\0' '\n' >"$R/devbox.ini"
bad "a file over 64 KiB" "devbox.ini"
rm -f "$R/devbox.ini"
echo '[limits]' >"$TEST_TMP/elsewhere.ini"
ln -s "$TEST_TMP/elsewhere.ini" "$R/devbox.ini"
bad "a symlinked devbox.ini" "symlink"
rm -f "$R/devbox.ini"
mkfifo "$R/devbox.ini"
bad "a FIFO devbox.ini (it must not block)" "not a regular file"
rm -f "$R/devbox.ini"
mkdir "$R/devbox.ini"
bad "a directory devbox.ini" "not a regular file"
rmdir "$R/devbox.ini"

# ---- extends: a repo file, then built-ins ---------------------------------------------------
printf '[limits]\npids = 200\nnofile = 2048\n' >"$R/base.ini"
write_profile "$R" $'extends = ./base.ini\n[limits]\npids = 150'
ok dbx profile check
ok dbx profile show --json
js=$OUT
assert_eq 150 "$(json_get "$js" 'j["limits"]["pids"]["value"]')" "pids: devbox.ini wins over its base"
assert_eq devbox.ini:3 "$(json_get "$js" 'j["limits"]["pids"]["from"]')" "origin of pids"
assert_eq 2048 "$(json_get "$js" 'j["limits"]["nofile"]["value"]')" "nofile from the base"
assert_eq base.ini:3 "$(json_get "$js" 'j["limits"]["nofile"]["from"]')" "origin of nofile"
assert_eq '["devbox.ini", "base.ini"]' "$(json_get "$js" 'sorted(j["files"], key=lambda f: f != "devbox.ini")')" "files of the chain"
# the base is part of what trust is about: a widening base needs trust
printf '[security]\ncapabilities = net_admin\n' >"$R/base.ini"
expect_rc 1 dbx profile check
assert_contains "$ERR" "capability 'net_admin'" "profile check with a widening base"
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "capability 'net_admin'" "exec with a widening base"
ok dbx trust
ok dbx profile check
printf '[security]\ncapabilities = net_admin, sys_admin\n' >"$R/base.ini"
expect_rc 1 dbx profile check
assert_contains "$ERR" "sys_admin" "profile check after the base changed under trust"

write_profile "$R" 'extends = ../outside.ini'
bad "extends outside the repo" "outside"
write_profile "$R" 'extends = ./devbox.ini'
bad "extends itself" "cycle"
write_profile "$R" 'extends = nosuchbuiltin'
bad "an unknown built-in" "nosuchbuiltin"
# a chain deeper than 8
for i in 1 2 3 4 5 6 7 8 9 10; do printf 'extends = ./c%s.ini\n' $((i + 1)) >"$R/c$i.ini"; done
echo '[limits]' >"$R/c11.ini"
write_profile "$R" 'extends = ./c1.ini'
bad "an extends chain of 11 files" "levels"
mkdir -p "$R/sub"
printf 'extends = ./sub/b.ini\n' >"$R/a.ini"
printf 'extends = ./a.ini\n' >"$R/sub/b.ini"
write_profile "$R" 'extends = ./a.ini'
bad "an extends cycle through two files" "cycle"
ln -s base.ini "$R/link.ini"
write_profile "$R" 'extends = ./link.ini'
bad "extends of a symlink" "symlink"

write_profile "$R" 'extends = strict'
ok dbx profile check
assert_eq ok "$OUT" "profile check of extends = strict (a narrowing)"
ok dbx profile show --json
js=$OUT
assert_eq strict "$(json_get "$js" 'j["security"]["seccomp"]["value"]')" "seccomp of extends = strict"
assert_eq 256 "$(json_get "$js" 'j["limits"]["pids"]["value"]')" "pids of extends = strict"
assert_contains "$(json_get "$js" 'j["limits"]["pids"]["from"]')" "strict" "origin of pids of extends = strict"

write_profile "$R" 'extends = agent'
expect_rc 1 dbx profile check
assert_contains "$ERR" "network mode 'allowlist'" "profile check of extends = agent (a widening)"

write_profile "$R" 'extends = default'
ok dbx profile check
assert_eq ok "$OUT" "profile check of extends = default"
