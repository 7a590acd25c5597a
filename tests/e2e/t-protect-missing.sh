#!/usr/bin/env bash
# t-protect-missing: a protected path that does not exist when the VM starts stays missing: the
# box (box user, `-u root`, `--admin`) can neither create it (file, directory, fifo), nor rename
# a file onto it, nor symlink or hard-link it, in any ASCII case; the host sees nothing created,
# and other new files in the repository work.  Enforced by virtiofsd's name guard on the host
# (mounts-names.c), so the box gets EPERM.  First with no devbox.ini (the default paths
# devbox.ini and .gitmodules are missing), then with a narrowing devbox.ini that protects
# agents' and editors' files by explicit `protect =` lines (.claude .vscode .mcp.json .envrc,
# and a nested path whose parent is missing: its parent is what is refused).  Once a path
# exists at a start, it is protected like any other (read-only).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
echo one >"$R/file"
git -C "$R" add file && git -C "$R" commit -qm one || fail "host commit"
mkdir -p "$R/tools"

# attacks.sh NAME...: for each missing protected NAME, every way of making it, plus an upper-case
# variant; prints NAME:how=ALLOWED|blocked, and the error text of a plain create.
cat >"$R/attacks.sh" <<'ATTACKS'
try() {
    n=$1
    shift
    if ( "$@" ) >/dev/null 2>&1; then echo "$n=ALLOWED"; else echo "$n=blocked"; fi
}
echo src >src.tmp
for p in "$@"; do
    case "$p" in
    */*) up="${p%/*}/$(printf '%s' "${p##*/}" | tr a-z A-Z)" ;;
    *) up=$(printf '%s' "$p" | tr a-z A-Z) ;;
    esac
    try "$p:create" sh -c "echo evil > '$p'"
    try "$p:mkdir" mkdir -p "$p"
    try "$p:mkdir_sub" mkdir -p "$p/sub"
    try "$p:fifo" mkfifo "$p"
    try "$p:rename" mv -f src.tmp "$p"
    try "$p:symlink" ln -s /tmp/evil "$p"
    try "$p:hardlink" ln src.tmp "$p"
    try "$p:upper" sh -c "echo evil > '$up'"
    try "$p:upper_mkdir" mkdir -p "$up"
done
err=$(sh -c "echo evil > '$1'" 2>&1)
echo "error=$err"
rm -f src.tmp
ATTACKS

# check_missing WHAT PATH...: each attack blocked, and nothing of it on the host
check_missing() {
    local what=$1 who u p
    shift
    for who in user root admin; do
        u=()
        [ $who = root ] && u=(-u root)
        [ $who = admin ] && u=(--admin)
        ok dbx exec "${u[@]}" -- sh attacks.sh "$@"
        allowed=$(printf '%s\n' "$OUT" | grep '=ALLOWED$' | tr '\n' ' ')
        [ -z "$allowed" ] || fail "$what, as $who: allowed: $allowed"
        n=$(printf '%s\n' "$OUT" | grep -c '=blocked$')
        assert_eq $((9 * $#)) "$n" "$what, as $who: blocked attempts in $(show "$OUT")"
        # (plain guest root has no DAC_OVERRIDE: the guest kernel already says EACCES for the
        # box user's directories; --admin has it, and meets the host's guard)
        [ $who = root ] || assert_contains "$(printf '%s\n' "$OUT" | grep '^error=')" \
            "Operation not permitted" "$what, as $who: the error a plain create gets"
        for p in "$@"; do
            up="${p%/*}/$(printf '%s' "${p##*/}" | tr a-z A-Z)"
            [ "$p" != "${p%/*}" ] || up=$(printf '%s' "$p" | tr a-z A-Z)
            [ ! -e "$R/$p" ] && [ ! -L "$R/$p" ] || fail "$what, as $who: $p exists on the host"
            [ ! -e "$R/$up" ] && [ ! -L "$R/$up" ] || fail "$what, as $who: $up exists on the host"
        done
        [ ! -e "$R/src.tmp" ] || fail "$what, as $who: src.tmp left over"
    done
}

# ---- no devbox.ini: the default protected paths devbox.ini and .gitmodules are missing ------
check_missing "default paths" devbox.ini .gitmodules
# the running VM keeps its policy, and a start finds no planted profile
ok dbx exec -- sh -c 'grep -E "^(CapEff|Seccomp):" /proc/self/status'
assert_contains "$OUT" "CapEff:	0000000000000000" "capabilities of the running VM"
[ ! -e "$R/devbox.ini" ] || fail "devbox.ini created"

# other new names, at the top and below, still work; so does git
ok dbx exec -- sh -c 'echo x > newfile && mkdir -p newdir/sub && echo y > newdir/sub/f && mv newfile renamed && ln -s renamed link && ln renamed hard && echo devbox > devbox.ini.txt && echo ok'
assert_eq ok "$OUT" "new files outside the protected names"
assert_eq x "$(cat "$R/renamed")" "a new file on the host"
assert_eq y "$(cat "$R/newdir/sub/f")" "a new file below on the host"
rm -rf -- "${R:?}/newdir" "$R/renamed" "$R/link" "$R/hard" "$R/devbox.ini.txt"
restart

# ---- a narrowing devbox.ini: agents' and editors' files, and a nested path -----------------
# (explicit lines: these are not all defaults on every branch yet)
write_profile "$R" $'[workspace]\nprotect = .claude, .vscode, .mcp.json, .envrc, .claude/settings.json, .vscode/tasks.json, tools/hooks/run.sh'
before=$(fingerprint devbox.ini)
check_missing "agents' files" .claude .vscode .mcp.json .envrc tools/hooks
for p in .claude/settings.json .vscode/tasks.json; do
    for who in user root; do
        u=()
        [ $who = root ] && u=(-u root)
        run dbx exec "${u[@]}" -- sh -c "mkdir -p '${p%/*}' && echo '{}' > '$p'"
        assert_box_failed "$p as $who"
        [ ! -e "$R/$p" ] && [ ! -e "$R/${p%/*}" ] || fail "$p created on the host ($who)"
    done
done
# the parent of the nested path keeps its other names; the siblings at the top too
ok dbx exec -- sh -c 'echo x > tools/other && mkdir tools/hooks2 && echo y > .envrc2 && echo ok'
assert_eq ok "$OUT" "siblings of missing protected paths"
rm -rf -- "${R:?}/tools/other" "$R/tools/hooks2" "$R/.envrc2"
assert_eq "$before" "$(fingerprint devbox.ini)" "host devbox.ini"

# ---- once a path exists at a start, it is protected read-only ------------------------------
restart
printf 'export X=1\n' >"$R/.envrc"
before=$(fingerprint devbox.ini .envrc)
for who in user root; do
    u=()
    [ $who = root ] && u=(-u root)
    run dbx exec "${u[@]}" -- sh -c 'echo evil >> .envrc'
    assert_box_failed "append to the now existing .envrc as $who"
    run dbx exec "${u[@]}" -- sh -c 'mv .envrc gone'
    assert_box_failed "rename the now existing .envrc as $who"
done
assert_eq "$before" "$(fingerprint devbox.ini .envrc)" "host .envrc (sha256, inode, mode, size, mtime)"
