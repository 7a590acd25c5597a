#!/usr/bin/env bash
# tests/e2e/run.sh [NAME...]: run the end-to-end tests (every tests/e2e/t-*.sh, or the ones
# named, with or without the t- prefix and .sh suffix) against real VMs.
#
# Each test runs in its own fresh DEVBOX_HOME under a short mktemp directory (unix socket
# paths are limited to 108 bytes), with DEVBOX_ACCEL=tcg, under a timeout.  Prints one line
# per test (PASS/FAIL/SKIP), the failing assertion and the tail of the logs for a failure,
# and ends with "N passed, N failed, N skipped"; exits non-zero if anything failed.  A test
# whose devbox processes wrote an ASan/UBSan report (ASAN_OPTIONS/UBSAN_OPTIONS log_path, set
# here per test) fails, even if it exited 0 or skipped.
#
# Environment: DEVBOX_BIN (default build/devbox), DEVBOX_KERNEL_DEB (default: downloaded once
# into build/cache with apt-get download), E2E_KERNEL (devbox, the default: the devbox kernel, built
# once by `devbox kernel build` into its cache (DEVBOX_KERNEL_CACHE, else devbox's default: as
# root /var/cache/devbox/kernel), which every test shares, and DEVBOX_KERNEL=devbox for every
# test; debian: Debian's cloud kernel, DEVBOX_KERNEL=debian), E2E_TIMEOUT (seconds per test,
# default 420),
# E2E_KEEP=1 keeps every test's directory (failed ones are always kept), E2E_JOBS=N runs N
# tests at a time (default 1).
set -uo pipefail

E2E_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
export DEVBOX_BIN=${DEVBOX_BIN:-$REPO_ROOT/build/devbox}
CACHE=${E2E_CACHE:-$REPO_ROOT/build/cache}
TIMEOUT=${E2E_TIMEOUT:-420}
export DEVBOX_ACCEL=${DEVBOX_ACCEL:-tcg}
# the ordinary user the rootless tests run as (lib.sh's rootless_user creates it)
export E2E_USER=dbxtest

die() {
    echo "e2e: $*" >&2
    exit 1
}

[ -x "$DEVBOX_BIN" ] || die "no devbox binary at $DEVBOX_BIN (run make first)"
mkdir -p "$CACHE" || die "cannot create $CACHE"

# ---- the guest kernel, downloaded once --------------------------------------------------
if [ -z "${DEVBOX_KERNEL_DEB:-}" ]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image/{print $2; exit}')
    [ -n "$pkg" ] || die "apt-cache does not know linux-image-cloud-amd64 (run apt-get update)"
    deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
    if [ -z "$deb" ]; then
        echo "e2e: downloading $pkg into $CACHE"
        dl=$(mktemp -d "$CACHE/dl.XXXXXX")
        chmod 755 "$dl" # apt's _apt sandbox user must be able to write when run as root
        (cd "$dl" && apt-get download -q "$pkg" >"$dl/log" 2>&1) ||
            die "apt-get download $pkg failed: $(tail -n 3 "$dl/log")"
        mv "$dl"/"${pkg}"_*.deb "$CACHE/" || die "no .deb after apt-get download $pkg"
        rm -rf "$dl"
        deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
    fi
    export DEVBOX_KERNEL_DEB=$deb
fi
[ -r "$DEVBOX_KERNEL_DEB" ] || die "kernel package $DEVBOX_KERNEL_DEB is not readable"

# ---- the devbox kernel, built once per machine (nothing to do when it is) ------------------
E2E_KERNEL=${E2E_KERNEL:-devbox}
case $E2E_KERNEL in
devbox)
    if [ -z "${DEVBOX_KERNEL_VMLINUX:-}" ]; then
        "$DEVBOX_BIN" kernel build || die "devbox kernel build failed (E2E_KERNEL=debian runs on Debian's kernel)"
    fi
    kernel_desc="devbox $("$DEVBOX_BIN" kernel status --json | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')"
    ;;
debian) kernel_desc=$(basename "$DEVBOX_KERNEL_DEB") ;;
*) die "E2E_KERNEL must be devbox or debian, not '$E2E_KERNEL'" ;;
esac
# Every test boots the kernel asked for: a missing devbox kernel is an error, never a silent
# Debian boot (nor a background build started by a test's supervisor).
export DEVBOX_KERNEL=$E2E_KERNEL E2E_KERNEL

# ---- the test image, rebuilt when mkimage.sh or busybox changes -------------------------
export DBX_TEST_IMAGE=$CACHE/e2e-rootfs.tar
if [ ! -s "$DBX_TEST_IMAGE" ] || [ "$E2E_DIR/mkimage.sh" -nt "$DBX_TEST_IMAGE" ] ||
    [ /bin/busybox -nt "$DBX_TEST_IMAGE" ]; then
    "$E2E_DIR/mkimage.sh" "$DBX_TEST_IMAGE" || die "mkimage.sh failed"
fi

# ---- select tests ------------------------------------------------------------------------
tests=()
if [ $# -gt 0 ]; then
    for n in "$@"; do
        n=${n##*/}
        n=${n%.sh}
        n=${n#t-}
        [ -f "$E2E_DIR/t-$n.sh" ] || die "no test t-$n.sh"
        tests+=("$E2E_DIR/t-$n.sh")
    done
else
    for t in "$E2E_DIR"/t-*.sh; do tests+=("$t"); done
fi

# The rootless user's corner of its home for the test in dir (lib.sh's rootless_user).
user_corner() { printf '%s/t.%s\n' "$(getent passwd "$E2E_USER" | cut -d: -f6)" "${1##*.}"; }

# The processes of the test in dir: its cmdline or DEVBOX_HOME under dir or its user corner.
test_procs() {
    local dir=$1 uh="/t.${1##*.}/" p pid cmd
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = $$ ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        if [[ $cmd == *"$dir"* ]] || [[ $cmd == *"$uh"* ]] ||
            tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -q -e "^DEVBOX_HOME=$dir" -e "^DEVBOX_HOME=.*$uh"; then
            echo "$pid"
        fi
    done
}

# Kill whatever a test left behind.
reap() {
    local pid
    for pid in $(test_procs "$1"); do kill -9 "$pid" 2>/dev/null; done
}

# What a test that is about to time out is stuck on, into $dir/hang: every thread of its
# processes with its state and where it sleeps in the kernel, and the kernel stack of each thread
# in D state and of virtiofsd's and its guard's (a hung workspace shows there as a request
# virtiofsd or the guard waits on, or as virtiofsd idle while the box waits).  The box's logs
# are in the report anyway (the user corner's too: run_one keeps them).
snapshot() {
    local dir=$1 pid t st comm
    echo "--- $(date +%T): threads of the test's processes (tid state wchan name):"
    # and virtiofsd's guard, its parent, whose command line names nothing of the test's
    for pid in $(for p in $(test_procs "$dir"); do
        echo "$p"
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == virtiofsd ]] &&
            awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null
    done | sort -un); do
        [ -d "/proc/$pid" ] || continue
        comm=$(cat "/proc/$pid/comm" 2>/dev/null)
        echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)"
        for t in /proc/"$pid"/task/*; do
            st=$(cut -d' ' -f3 "$t/stat" 2>/dev/null)
            printf '  %s %s %s %s\n' "${t##*/}" "$st" "$(cat "$t/wchan" 2>/dev/null)" \
                "$(cat "$t/comm" 2>/dev/null)"
            if [ "$st" = D ] || [[ $comm == virtiofsd* ]]; then
                grep -v -e 'do_syscall_64' -e 'entry_SYSCALL' "$t/stack" 2>/dev/null |
                    head -n 8 | sed 's/^/      /'
            fi
        done
    done
}

# One test in its own directory: runs it, then writes the line run.sh prints for it (and, for
# a failure, the assertion and the logs' tails) to $dir/report and PASS/SKIP/FAIL to
# $dir/status.  Runs in the background when E2E_JOBS > 1, so it prints nothing itself.
run_one() {
    local t=$1 dir=$2 name rc secs t0 why sanitizer_report n uc
    name=$(basename "$t" .sh)
    t0=$SECONDS
    # timeout runs the test in its own process group and signals all of it; the test's cleanup
    # trap still runs on TERM, and reap below gets whatever escaped the group.
    # Sanitizer reports of every devbox process of the test (the supervisor's stderr is a log
    # file nobody reads) go to files in $dir/san (writable by the rootless tests' user); any
    # such file fails the test whatever its exit code (`make asan`; ignored by a plain build).
    mkdir -m 1777 "$dir/san"
    TEST_TMP=$dir DEVBOX_HOME=$dir/h \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$dir/san/report" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$dir/san/report" \
        timeout -k 20 "$TIMEOUT" bash "$t" >"$dir/log" 2>&1 </dev/null &
    local test_pid=$! watchdog=
    if [ "$TIMEOUT" -gt 60 ]; then
        (
            sleep $((TIMEOUT - 30)) &
            wait $! && snapshot "$dir" >"$dir/hang" 2>&1
        ) &
        watchdog=$!
    fi
    wait "$test_pid"
    rc=$?
    if [ -n "$watchdog" ]; then
        pkill -P "$watchdog" sleep 2>/dev/null
        wait "$watchdog" 2>/dev/null
    fi
    secs=$((SECONDS - t0))
    reap "$dir"
    # a rootless test's corner of the user's home, left by a failure or a timeout (its cleanup
    # never ran): its devbox logs into $dir/u/logs, where the report looks, then it goes
    uc=$(user_corner "$dir")
    if [ -d "$uc" ]; then
        [ $rc = 0 ] || (mkdir -p "$dir/u/logs" && cd "$uc" && find . \( -name '*.log' -o \
            -name 'console*' -o -name events.jsonl \) -type f -exec cp --parents -t "$dir/u/logs" {} +)
        rm -rf "$uc"
    fi
    if [ -n "$(find "$dir/san" -type f -size +0 2>/dev/null)" ]; then
        printf 'sanitizer report (%s)\n' "$(cd "$dir/san" && echo *)" >>"$dir/failure"
        sanitizer_report=1
        rc=1
    else
        sanitizer_report=0
    fi
    exec 3>"$dir/report"
    if [ $rc = 0 ]; then
        printf 'PASS %-24s (%ss)\n' "$name" "$secs" >&3
        echo PASS >"$dir/status"
    elif [ $rc = 77 ]; then
        printf 'SKIP %-24s (%s)\n' "$name" "$(head -n 1 "$dir/skip" 2>/dev/null)" >&3
        echo SKIP >"$dir/status"
    else
        why=
        [ $rc = 124 ] || [ $rc = 137 ] && why=" timed out after ${TIMEOUT}s"
        {
            printf 'FAIL %-24s (%ss, rc %s)%s\n' "$name" "$secs" "$rc" "$why"
            if [ -s "$dir/failure" ]; then
                sed 's/^/    assertion: /' "$dir/failure"
            fi
            if [ $sanitizer_report = 1 ]; then
                for f in "$dir"/san/*; do
                    echo "    --- ${f#"$dir"/}:"
                    grep -m 12 -E 'ERROR|SUMMARY|runtime error|^    #[0-9]' "$f" | cut -c1-300 |
                        sed 's/^/    | /'
                done
            fi
            if [ -s "$dir/hang" ]; then
                echo "    --- 30 s before the timeout ($dir/hang):"
                head -n 250 "$dir/hang" | cut -c1-300 | sed 's/^/    | /'
            fi
            echo "    --- last lines of the test log ($dir/log):"
            tail -n 25 "$dir/log" | cut -c1-300 | sed 's/^/    | /'
            # devbox's own logs (supervisor, qemu console, virtiofsd) under DEVBOX_HOME, and the
            # rootless user's (run_one keeps them in $dir/u/logs); more of the console, where a
            # kernel's oops or OOM report runs to some 30 lines
            while IFS= read -r f; do
                echo "    --- last lines of ${f#"$dir"/}:"
                case $f in *console*) n=40 ;; *) n=15 ;; esac
                tail -n "$n" "$f" | cut -c1-300 | sed 's/^/    | /'
            done < <(find "$dir/h" "$dir/u" \( -name '*.log' -o -name 'console*' \) -type f 2>/dev/null | head -n 6)
        } >&3
        echo FAIL >"$dir/status"
    fi
    exec 3>&-
}

# Print a finished test's report and count it; its directory goes unless it failed.
collect() {
    local dir=$1 name=$2 status
    cat "$dir/report" 2>/dev/null
    status=$(cat "$dir/status" 2>/dev/null || echo FAIL)
    case $status in
    PASS) passed=$((passed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
    *)
        [ -s "$dir/report" ] || echo "FAIL $name (no report: the runner died)"
        failed=$((failed + 1))
        failed_names+=("$name")
        ;;
    esac
    if [ "$status" = PASS ] || [ "$status" = SKIP ]; then
        [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$dir"
    fi
}

# E2E_JOBS tests at a time (default 1).  Each boots one VM of one vCPU under TCG, so on a
# machine of N cores N of them take about the time of one.  A test whose file has a line
# "# e2e: alone" (it measures time or loads the machine on purpose) runs with no other test.
JOBS=${E2E_JOBS:-1}
[[ $JOBS =~ ^[1-9][0-9]?$ ]] || die "E2E_JOBS must be a number from 1 to 99, not '$JOBS'"
declare -A running=() # pid -> "dir name"
passed=0 failed=0 skipped=0
failed_names=()
start_all=$SECONDS
echo "e2e: devbox $DEVBOX_BIN, kernel $kernel_desc, accel $DEVBOX_ACCEL, $JOBS at a time"
wait_one() {
    local pid
    wait -n -p pid "${!running[@]}"
    # shellcheck disable=SC2086 # "dir name": two words
    collect ${running[$pid]}
    unset "running[$pid]"
}
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    alone=0
    grep -q '^# e2e: alone' "$t" && alone=1
    while [ ${#running[@]} -ge "$JOBS" ] || { [ $alone = 1 ] && [ ${#running[@]} -gt 0 ]; }; do
        wait_one
    done
    dir=$(mktemp -d /tmp/dbx.XXXXXX) || die "mktemp failed"
    run_one "$t" "$dir" &
    running[$!]="$dir $name"
    if [ $alone = 1 ]; then wait_one; fi
done
while [ ${#running[@]} -gt 0 ]; do wait_one; done

echo "e2e: $((SECONDS - start_all))s${failed_names[*]:+; failed: ${failed_names[*]}}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed = 0 ]
