#!/usr/bin/env bash
# t-exec-basic: exit code and files: the repository is shared at the same absolute path, a
# file the command writes lands on the host owned by the invoking user.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

expect_rc 7 dbx exec -- sh -c 'echo hi > out.txt; exit 7'
assert_file "$R/out.txt"
assert_eq hi "$(cat "$R/out.txt")" "content of out.txt"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/out.txt")" "owner of out.txt on the host"

# same absolute path in the guest, and host changes are visible at once (shared, not copied)
ok dbx exec -- pwd
assert_eq "$R" "$OUT" "guest cwd"
echo "from host" >"$R/host.txt"
ok dbx exec -- cat "$R/host.txt"
assert_eq "from host" "$OUT" "host file read in the guest"
ok dbx exec -- sh -c 'mkdir -p d/e && echo nested > d/e/f && rm host.txt'
assert_eq nested "$(cat "$R/d/e/f" 2>&1)" "file in a directory made by the guest"
assert_eq "$(id -u):$(id -g)" "$(stat -c %u:%g "$R/d/e")" "owner of a guest-made directory"
[ ! -e "$R/host.txt" ] || fail "host.txt deleted in the guest still exists on the host"

# plain exit codes pass through
for c in 0 1 2 100 255; do
    expect_rc "$c" dbx exec -- sh -c "exit $c"
done
expect_rc 1 dbx exec -- false

# A tool installed under ~/.local/bin (pip --user, pipx, npm --prefix ~/.local) runs by name, as
# from a login shell, and a tool a command installs is found by that same command; the admin's
# PATH stays fixed, and a login shell's ~/.profile adds the entries itself.
ok dbx exec -- sh -c 'mkdir -p ~/.local/bin && printf "#!/bin/sh\necho local-tool\n" >~/.local/bin/dbx-local-tool && chmod +x ~/.local/bin/dbx-local-tool'
ok dbx exec -- dbx-local-tool
assert_eq local-tool "$OUT" "a tool in ~/.local/bin run by name"
ok dbx exec --shell -- 'dbx-local-tool'
assert_eq local-tool "$OUT" "the same through the user's shell"
ok dbx exec -- sh -c 'echo "$PATH"'
HOME_IN_BOX=$(dbx exec -- sh -c 'echo "$HOME"')
assert_eq "$HOME_IN_BOX/.local/bin:$HOME_IN_BOX/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$OUT" "exec's PATH"
ok dbx exec -- sh -c 'mkdir -p ~/bin && printf "#!/bin/sh\necho bin-tool\n" >~/bin/dbx-bin-tool && chmod +x ~/bin/dbx-bin-tool && dbx-bin-tool'
assert_eq bin-tool "$OUT" "a tool the same command put in ~/bin"
ok dbx exec -e PATH=/usr/bin:/bin -- sh -c 'echo "$PATH"'
assert_eq /usr/bin:/bin "$OUT" "a PATH typed with -e"
ok dbx exec --admin -- sh -c 'echo "$PATH"'
assert_eq /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$OUT" "the admin's PATH"
ok dbx exec -- sh -c 'rm -rf ~/.local/bin/dbx-local-tool ~/bin'
