#!/usr/bin/env bash
# t-setup-apt: [setup] with a real package manager (the Debian image): apt-get update and
# install from a repository on the host's loopback (the only host the setup network allows;
# the image's own sources removed first), the package usable by the box user afterwards;
# `devbox exec --admin` can remove it (root with the package manager's capabilities);
# `[box] disk = 6G` gives a root filesystem of about 6 GiB.
. "$(dirname "$0")/lib.sh"

import_debian
A=$(apt_repo "$TEST_TMP/apt") || exit $?
R=$(make_repo proj)
cd "$R" || fail "cd $R"

CMDS=(
    "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*"
    "echo 'deb [trusted=yes] http://mirror.test:$A/ ./' > /etc/apt/sources.list.d/test.list"
    "apt-get update"
    "apt-get install -y devbox-hello"
)
write_profile "$R" "[box]
disk = 6G

[setup]
$(setup_run "${CMDS[@]}")
network = allowlist
allow = mirror.test:$A, 127.0.0.1:$A
resolve = mirror.test:127.0.0.1"
debs_served() { grep -c 'GET /[^ ]*devbox-hello_1\.0_all\.deb HTTP/[0-9.]*" 200' "$TEST_TMP/netserver.log"; }
debs=$(debs_served)

expect_rc 125 dbx exec -- true
assert_contains "$ERR" "setup runs 'apt-get install -y devbox-hello' as root" "refusal of an untrusted [setup]"
ok dbx trust

ok dbx exec -- devbox-hello
assert_eq "hello from devbox-hello" "$OUT" "the package setup installed, run as the box user"
assert_setup_progress "$ERR" 4 "stderr of the first start" "${CMDS[@]}"
assert_contains "$ERR" "Setting up devbox-hello (1.0)" "stderr of the first start: the output of apt-get install"
ok dbx exec -- sh -c 'id -u; dpkg-query -W -f "\${Status} \${Version}\n" devbox-hello; ls /etc/apt/sources.list.d'
assert_eq "$(box_uid)"$'\ninstall ok installed 1.0\ntest.list' "$OUT" \
    "box user, the package's dpkg status, the apt sources setup left"
assert_le $((debs + 1)) "$(debs_served)" "downloads of the package from the repository (the host's check: $debs)"

# ---- [box] disk = 6G ------------------------------------------------------------------------------
ok dbx exec -- df -kP /
kb=$(printf '%s\n' "$OUT" | awk 'NR == 2 {print $2}')
[[ $kb =~ ^[0-9]+$ ]] || fail "df -kP / in the box: $(show "$OUT")"
log "root filesystem: $kb KiB"
assert_le $((55 * 1024 * 1024 / 10)) "$kb" "size of / in KiB with [box] disk = 6G (at least 5.5 GiB)"
assert_le "$kb" $((6 * 1024 * 1024)) "size of / in KiB with [box] disk = 6G (at most 6 GiB)"

# ---- --admin: one command as root with the package manager's capabilities ------------------------
ok dbx exec --admin -- id -u
assert_eq 0 "$OUT" "uid of devbox exec --admin"
ok dbx exec --admin -- dpkg -r devbox-hello
expect_rc 127 dbx exec -- devbox-hello
