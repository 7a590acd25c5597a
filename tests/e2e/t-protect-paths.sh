#!/usr/bin/env bash
# t-protect-paths: the default protected paths (.git/hooks .git/config .gitmodules devbox.ini)
# cannot be changed, replaced, moved, linked or removed from the box, neither by the box user nor
# by guest root (capabilities dropped); on the host their content, inode, mode and mtime stay
# the same.  The rest of the workspace and of .git stays writable.  [workspace] protect adds
# paths (a narrowing); unprotect removes one (a widening, after trust).
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
echo one >"$R/file"
printf '[submodule "lib"]\n\tpath = lib\n\turl = https://example.invalid/lib.git\n' >"$R/.gitmodules"
git -C "$R" add file .gitmodules && git -C "$R" commit -qm one || fail "host commit"
write_profile "$R" $'[limits]\npids = 2000'
mkdir -p "$R/secrets" "$R/docs"
echo key >"$R/secrets/key"
echo readme >"$R/docs/readme.md"
write_attacks "$R/attacks.sh"

PROTECTED=(devbox.ini .gitmodules .git/config .git/hooks)
before=$(fingerprint "${PROTECTED[@]}")
git_ino=$(stat -c %i "$R/.git")

check_host_unchanged() { # WHAT
    assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "$1: protected paths on the host"
    assert_eq "$git_ino" "$(stat -c %i "$R/.git")" "$1: inode of .git"
    local f
    for f in devbox.ini.x ini-hardlink .git.old .git/config.old .git/hooks.old gm.old; do
        [ ! -e "$R/$f" ] || fail "$1: $f exists on the host"
    done
}

ok dbx exec -- sh attacks.sh
assert_all_blocked "$OUT" "box user"
check_host_unchanged "after the box user's attempts"

ok dbx exec -u root -- sh attacks.sh
assert_all_blocked "$OUT" "guest root"
check_host_unchanged "after guest root's attempts"

# everything else stays writable, .git included (git needs it; at its top only names git
# itself creates there, such as all-capital state files: docs/SECURITY.md)
ok dbx exec -- sh -c 'echo two > file && mkdir -p sub && echo s > sub/f && touch .git/PROBE_OK && rm .git/PROBE_OK && echo "x" >> .git/info/exclude && echo ok'
assert_eq ok "$OUT" "writes outside the protected paths"
assert_eq two "$(cat "$R/file")" "file written by the box"
# the box sees the protected files' content
ok dbx exec -- cat devbox.ini
assert_eq "$(cat "$R/devbox.ini")" "$OUT" "devbox.ini read in the box"
# a host-side change to a protected file is visible in the box (protection is not a copy;
# virtiofs runs with cache=auto: host edits show up within about a second)
printf '[limits]\npids = 2000\n# host edit\n' >"$R/devbox.ini"
seen_edit() { [ "$("$DEVBOX" exec -- tail -n 1 devbox.ini 2>/dev/null </dev/null)" = "# host edit" ]; }
wait_until 10 seen_edit || fail "host edit of devbox.ini not seen in the box within 10 s"
before=$(fingerprint "${PROTECTED[@]}")

# ---- [workspace] protect adds paths: a narrowing ----------------------------------------
write_profile "$R" $'[workspace]\nprotect = secrets, docs/readme.md'
ok dbx profile check
assert_eq ok "$OUT" "profile check with extra protected paths"
restart
before=$(fingerprint "${PROTECTED[@]}")
extra_before=$(fingerprint secrets docs/readme.md)
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    ok dbx exec "${u[@]}" -- sh -c '
        for c in "echo x >> secrets/key" "touch secrets/new" "rm -f secrets/key" "mv secrets s2" \
                 "echo x >> docs/readme.md" "rm -f docs/readme.md" "mv docs/readme.md docs/r2"; do
            if sh -c "$c" >/dev/null 2>&1; then echo "ALLOWED: $c"; fi
        done
        echo done'
    assert_eq "done" "$OUT" "extra protected paths as $who"
    ok dbx exec "${u[@]}" -- sh attacks.sh
    assert_all_blocked "$OUT" "default paths with extra protected paths, as $who"
done
assert_eq "$extra_before" "$(fingerprint secrets docs/readme.md)" "extra protected paths on the host"
check_host_unchanged "with extra protected paths"
ok dbx exec -- sh -c 'echo new > docs/other.md && cat docs/other.md'
assert_eq new "$OUT" "an unprotected sibling of a protected file"

# ---- unprotect: a widening; after trust that path (only) is writable ----------------------
write_profile "$R" $'[workspace]\nunprotect = .gitmodules'
restart
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "unprotects '.gitmodules'" "refusal of unprotect"
ok dbx trust
before=$(fingerprint devbox.ini .git/config .git/hooks)
ok dbx exec -- sh -c 'echo "# box" >> .gitmodules && tail -n 1 .gitmodules'
assert_eq "# box" "$OUT" "write to an unprotected .gitmodules"
assert_eq "# box" "$(tail -n 1 "$R/.gitmodules")" ".gitmodules on the host after the box wrote it"
ok dbx exec -- sh attacks.sh
for n in ini_append ini_mv ini_rm git_config_append hooks_touch hooks_mkdir; do
    assert_kv "$OUT" "$n" blocked "with .gitmodules unprotected"
done
assert_eq "$before" "$(fingerprint devbox.ini .git/config .git/hooks)" "still protected paths on the host"

# A dotfiles repository: what the user's home links to inside the workspace (~/.bashrc ->
# repo/.bashrc, as GNU stow installs them) is the host's own configuration, protected from the
# next start on; the rest of the repository, and a plain name at the home's top linking into it,
# stay writable.
ok dbx stop
HM=$TEST_TMP/linkhome
mkdir -p "$HM/.config" "$R/dots/nvim"
echo "alias ll='ls -l'" >"$R/dots/.bashrc"
echo "set number" >"$R/dots/nvim/init.vim"
echo notes >"$R/dots/notes.txt"
ln -s "$R/dots/.bashrc" "$HM/.bashrc"
ln -s "$R/dots/nvim" "$HM/.config/nvim"
ln -s "$R/dots/notes.txt" "$HM/notes"
ln -s "$R/dots/.profile" "$HM/.profile" # not there yet: the box must not make it
mkdir -p "$R/dots/bin" && printf '#!/bin/sh\necho tool\n' >"$R/dots/bin/tool"
ln -s "$R/dots/bin" "$HM/bin" # stow's folding: the directory on PATH is the link
run_in "$R" env HOME="$HM" "$DEVBOX" exec -- sh -c 'for f in dots/.bashrc dots/nvim/init.vim dots/notes.txt dots/.profile dots/bin/tool dots/bin/new; do
    if echo box >>"$f" 2>/dev/null; then echo "$f=written"; else echo "$f=blocked"; fi; done'
assert_eq 0 "$RC" "exec with a home linking into the workspace: $(show "$ERR")"
assert_kv "$OUT" dots/.bashrc blocked "a dotfile the home links to"
assert_kv "$OUT" dots/nvim/init.vim blocked "a file in a directory ~/.config links to"
assert_kv "$OUT" dots/notes.txt written "a file a plain name of the home links to"
assert_kv "$OUT" dots/.profile blocked "a missing file the home links to"
assert_kv "$OUT" dots/bin/tool blocked "a script in ~/bin, itself a link into the workspace"
assert_kv "$OUT" dots/bin/new blocked "a new script there"
[ ! -e "$R/dots/.profile" ] || fail "the box made dots/.profile, which the host's ~/.profile names"
assert_eq "alias ll='ls -l'" "$(cat "$R/dots/.bashrc")" "the host's .bashrc after the box tried"
ok dbx logs --supervisor
assert_contains "$OUT" "protected: 'dots/.bashrc' (your home links to it)" "the supervisor's log"
ok dbx stop
