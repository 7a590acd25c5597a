#!/usr/bin/env bash
# t-kernel: the command runs in the guest kernel the suite asked for (E2E_KERNEL: the devbox
# kernel, or Debian's 6.1 cloud kernel), not the host's, and `devbox status` names it; later
# execs reuse the same running VM.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- uname -r
guest=$OUT
assert_ne "$(uname -r)" "$guest" "guest kernel release (must differ from the host's)"
if [ "${E2E_KERNEL:-debian}" = devbox ]; then
    # vm/devbox-kernel.config: CONFIG_LOCALVERSION="-devbox"
    assert_match "$guest" '^6\.1\.[0-9]+-devbox$' "guest 'uname -r' on the devbox kernel"
else
    assert_match "$guest" '^6\.1\.0-[0-9]+-cloud-amd64$' "guest 'uname -r'"
    # the release is the one of the kernel package the suite handed to devbox
    deb=$(basename "$DEVBOX_KERNEL_DEB")
    want=${deb#linux-image-}
    want=${want%%_*}
    assert_eq "$want" "$guest" "guest kernel release vs $deb"
fi
ok dbx status --json
assert_contains "$OUT" "\"kernel\":\"$guest\"" "devbox status --json names the kernel in use"

ok dbx exec -- uname -m
assert_eq x86_64 "$OUT" "guest machine"

# one VM per project, reused: same boot id for two execs, one qemu process
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
boot1=$OUT
ok dbx exec -- cat /proc/sys/kernel/random/boot_id
assert_eq "$boot1" "$OUT" "boot id of the second exec (VM must be reused)"
q=$(the_qemu_pid)
qcmd=$(tr '\0' ' ' <"/proc/$q/cmdline")
assert_contains "$qcmd" "tcg" "qemu command line with DEVBOX_ACCEL=tcg"
