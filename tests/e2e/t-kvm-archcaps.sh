#!/usr/bin/env bash
# t-kvm-archcaps: under KVM the guest gets the host CPU's IA32_ARCH_CAPABILITIES (`-cpu host`),
# which tells its kernel which speculative bugs the CPU is immune to; a host KVM that refuses
# that MSR (QEMU 7.2 aborts at start: "failed to set MSR 0x10a", as on some nested hosts and
# GitHub's runners) gets one more boot with it masked, and the verdict is kept for that host
# kernel, so later boots go straight there.  No machine here has a KVM that boots a guest, so
# the test stands a wrapper in for QEMU's binary, in a mount namespace of its own: it answers
# a KVM command line as that host's QEMU does (the same two lines on stderr, then SIGABRT)
# or runs the real QEMU with the TCG command line devbox gives this project, and writes down
# each `-cpu` it was given.  Everything else is real: supervisor, QEMU, virtiofsd, the guest.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace with a stand-in QEMU binary"
command -v unshare >/dev/null || skip "no unshare"
# the binary devbox runs (vm/vm-qemu.c: QEMU's PATH)
real=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v qemu-system-x86_64) || fail "no qemu-system-x86_64"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

# The TCG command line devbox builds for this project: the stand-in runs QEMU with its
# accelerator, CPU, machine and kernel command line (TCG's clock knobs: tsc_early_khz, ...).
ok dbx exec -- true
q=$(the_qemu_pid)
mapfile -d '' qargv <"/proc/$q/cmdline"
tcg_opt() { # OPTION: its value on the TCG command line
    local i
    for ((i = 0; i < ${#qargv[@]} - 1; i++)); do
        [ "${qargv[i]}" = "$1" ] && { printf '%s' "${qargv[i + 1]}"; return; }
    done
    fail "no $1 on the TCG command line"
}
ok dbx stop

# The real binary's second place, which the stand-in runs: its name stays qemu-system-*, and
# QEMU finds its modules and firmware relative to it (../lib, ../share), as from /usr/bin.
B=$TEST_TMP/usr/bin
mkdir -p "$B"
: >"$B/qemu-system-x86_64"
ln -s /usr/lib "$TEST_TMP/usr/lib"
ln -s /usr/share "$TEST_TMP/usr/share"
CPULOG=$TEST_TMP/cpu.log
{
    printf '#!/bin/bash\n'
    printf 'accel=%q cpu=%q machine=%q append=%q real=%q log=%q\n' \
        "$(tcg_opt -accel)" "$(tcg_opt -cpu)" "$(tcg_opt -M)" "$(tcg_opt -append)" \
        "$B/qemu-system-x86_64" "$CPULOG"
    cat <<'EOF'
refuse=$(cat "${log%/*}/refuse")
args=() asked= socks=()
while [ $# -gt 0 ]; do
    case $1 in
    -chardev) [[ $2 == socket,*path=* ]] && socks+=("${2##*path=}"); args+=("$1" "$2") ;;
    -accel) [ "$2" = kvm ] || { echo "stand-in: -accel $2, not kvm" >&2; exit 1; }; args+=(-accel "$accel") ;;
    -cpu) asked=$2; args+=(-cpu "$cpu") ;;
    -M) args+=(-M "$machine") ;;
    -append) args+=(-append "$append") ;;
    *) args+=("$1"); shift; continue ;;
    esac
    shift 2
done
[ -n "$asked" ] && echo "$asked" >>"$log"
if [ "$refuse" != none ] && [[ ,$asked, != *,-arch-capabilities,* ]]; then
    # QEMU 7.2, target/i386/kvm/kvm.c: kvm_buf_set_msrs
    echo "qemu-system-x86_64: error: failed to set MSR $refuse to 0x69" >&2
    echo "qemu-system-x86_64: ../target/i386/kvm/kvm.c:3870: kvm_buf_set_msrs: Assertion \`ret == cpu->kvm_msr_buf->nmsrs' failed." >&2
    # QEMU 7.2 connects its socket chardevs (virtiofsd's) before it makes the vCPUs, and
    # virtiofsd exits when QEMU hangs up: so does the stand-in.  It hangs up before it ends
    # and waits, so the supervisor learns of virtiofsd's end before QEMU's: the order (one of
    # the two QEMU's own abort gives) that began a stop of the box the second boot then made.
    for s in "${socks[@]}"; do
        /usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$s" ||
            echo "stand-in: cannot connect to $s" >&2
    done
    [ ${#socks[@]} = 0 ] || sleep 1
    ulimit -c 0
    kill -ABRT $$
fi
exec "$real" "${args[@]}"
EOF
} >"$TEST_TMP/stand-in"
chmod 755 "$TEST_TMP/stand-in"

# kvm_dbx ARGS: devbox with DEVBOX_ACCEL=kvm, its supervisor (and so QEMU) in a mount
# namespace where the QEMU binary devbox runs is the stand-in
kvm_dbx() {
    run env DEVBOX_ACCEL=kvm timeout -k 5 "$DBX_CMD_TIMEOUT" unshare -m --propagation private \
        sh -c 'mount --bind "$1" "$2" && mount --bind "$3" "$1" && shift 3 && exec "$@"' sh \
        "$real" "$B/qemu-system-x86_64" "$TEST_TMP/stand-in" "$DEVBOX" "$@"
}
# (the -cpu lines are compared without repeats: under load a TCG boot may miss KVM's 10 s
# hello and be tried again with the same CPU)
V=$DEVBOX_HOME/state/accel.json
slog() { cat "$DEVBOX_HOME"/state/*/*/supervisor.log "$DEVBOX_HOME"/state/*/supervisor.log 2>/dev/null; }

# 1. A host KVM that takes the MSR: the guest gets it, one QEMU, no verdict.
echo none >"$TEST_TMP/refuse"
kvm_dbx exec -- cat /proc/cpuinfo
[ "$RC" = 0 ] || fail "exec under the stand-in KVM: rc $RC: $(show "$ERR")"
assert_contains "$OUT" "processor" "the guest's /proc/cpuinfo"
assert_eq "host,-vmx,-svm" "$(uniq "$CPULOG")" "-cpu of the one KVM boot"
ok dbx status --json
assert_eq kvm "$(json_get "$OUT" 'j["accel"]')" "accelerator in status"
[ -e "$V" ] && fail "a verdict after a KVM boot that worked: $(cat "$V")"
ok dbx stop

# 2. A host KVM that refuses it: QEMU aborts, devbox boots again with it masked, once, and the
#    command runs; the verdict is recorded for this host kernel.
echo 0x10a >"$TEST_TMP/refuse"
: >"$CPULOG"
kvm_dbx exec -- sh -c 'echo hi; exit 3'
assert_eq 3 "$RC" "exit code through the second boot (stderr: $(show "$ERR"))"
assert_eq hi "$OUT" "output through the second boot"
assert_eq "host,-vmx,-svm
host,-arch-capabilities,-vmx,-svm" "$(uniq "$CPULOG")" "-cpu of the two boots"
assert_file "$V"
assert_eq "{\"arch_capabilities\":\"refused\",\"host_kernel\":\"$(uname -r)\"}" "$(cat "$V")" \
    "the verdict (not one against KVM itself)"
assert_contains "$(slog)" "KVM refused the host CPU's IA32_ARCH_CAPABILITIES" "supervisor log"
assert_eq "" "$ERR" "stderr of a boot that needed the masked CPU (nothing for the user to do)"
ok dbx stop

# 3. The next boot goes straight to the masked CPU.
: >"$CPULOG"
kvm_dbx exec -- true
[ "$RC" = 0 ] || fail "exec after the verdict: rc $RC: $(show "$ERR")"
assert_eq "host,-arch-capabilities,-vmx,-svm" "$(uniq "$CPULOG")" "-cpu once the verdict is there"
ok dbx stop

# 4. A verdict for another host kernel is not this one's: the full CPU is tried again.
printf '{"arch_capabilities":"refused","host_kernel":"0.0.0-other"}\n' >"$V"
echo none >"$TEST_TMP/refuse"
: >"$CPULOG"
kvm_dbx exec -- true
[ "$RC" = 0 ] || fail "exec with another kernel's verdict: rc $RC: $(show "$ERR")"
assert_eq "host,-vmx,-svm" "$(uniq "$CPULOG")" "-cpu with another host kernel's verdict"
ok dbx stop

# 5. Another MSR refused (a VMX capability MSR, not this fault): no masked retry, no verdict;
#    the forced KVM fails with QEMU's words in one line.
rm -f "$V"
echo 0x48f >"$TEST_TMP/refuse"
: >"$CPULOG"
kvm_dbx exec -- true
assert_ne 0 "$RC" "exit code when QEMU aborts for another MSR"
assert_one_line "$ERR" "error when QEMU aborts for another MSR"
assert_contains "$ERR" "kvm_buf_set_msrs" "error names QEMU's failure"
assert_eq "host,-vmx,-svm" "$(uniq "$CPULOG")" "-cpu when another MSR is refused (one boot)"
[ -e "$V" ] && grep -q arch_capabilities "$V" && fail "arch_capabilities verdict for MSR 0x48f: $(cat "$V")"
exit 0
