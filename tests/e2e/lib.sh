# shellcheck shell=bash
# tests/e2e/lib.sh: helpers shared by the end-to-end tests (sourced, bash).
#
# run.sh gives every test its own environment:
#   TEST_TMP        a fresh short directory (unix socket paths are limited to 108 bytes)
#   DEVBOX_HOME     $TEST_TMP/h, all devbox state
#   DEVBOX_ACCEL    tcg
#   DEVBOX_KERNEL_DEB, DBX_TEST_IMAGE (the tarball built by mkimage.sh), DEVBOX_BIN
#   E2E_KERNEL, DEVBOX_KERNEL  devbox or debian: the guest kernel every box boots
# A test exits 0 to pass, 77 to skip (skip "why"), anything else fails; `fail` records the
# failing assertion in $TEST_TMP/failure so run.sh can print it.
set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
DEVBOX=${DEVBOX_BIN:-$REPO_ROOT/build/devbox}
: "${TEST_TMP:?run the tests through tests/e2e/run.sh}"
: "${DEVBOX_HOME:?run the tests through tests/e2e/run.sh}"
export DEVBOX_ACCEL=${DEVBOX_ACCEL:-tcg}
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
# Timeout for one devbox command (a cold boot under TCG included).
DBX_CMD_TIMEOUT=${DBX_CMD_TIMEOUT:-180}

# ---- reporting ----------------------------------------------------------------------------

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# fail MSG: record the failing assertion with its location and end the test.
fail() {
    local i where=
    for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
        if [ "${BASH_SOURCE[i]##*/}" != lib.sh ]; then
            where="${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
            break
        fi
    done
    printf '%s: %s\n' "${where:-lib.sh}" "$*" >>"$TEST_TMP/failure"
    printf 'FAILED %s: %s\n' "${where:-lib.sh}" "$*" >&2
    exit 1
}

skip() {
    printf '%s\n' "$*" >"$TEST_TMP/skip"
    log "SKIP: $*"
    exit 77
}

# Quote a value for messages: show control bytes, cut long values.
show() {
    local v=$1
    if [ ${#v} -gt 400 ]; then v="${v:0:400}...(${#1} bytes)"; fi
    printf '%q' "$v"
}

assert_eq() { # EXPECTED ACTUAL [WHAT]
    [ "$1" == "$2" ] || fail "${3:-value}: expected $(show "$1"), got $(show "$2")"
}
assert_ne() { # UNEXPECTED ACTUAL [WHAT]
    [ "$1" != "$2" ] || fail "${3:-value}: expected anything but $(show "$1")"
}
assert_contains() { # HAYSTACK NEEDLE [WHAT]
    [[ "$1" == *"$2"* ]] || fail "${3:-output}: expected to contain $(show "$2"), got $(show "$1")"
}
assert_not_contains() { # HAYSTACK NEEDLE [WHAT]
    [[ "$1" != *"$2"* ]] || fail "${3:-output}: expected not to contain $(show "$2"), got $(show "$1")"
}
assert_match() { # STRING ERE [WHAT]
    [[ "$1" =~ $2 ]] || fail "${3:-value}: expected to match /$2/, got $(show "$1")"
}
assert_box_failed() { # [WHAT]: the command run by `dbx exec` failed by itself: not 0, and not
    # devbox's own 125 (which would make a "cannot reach" check pass for the wrong reason)
    [ "$RC" != 0 ] && [ "$RC" != 125 ] ||
        fail "${1:-command in the box}: rc $RC, expected the command itself to fail; stderr: $(show "$ERR")"
}
assert_le() { # A B [WHAT]: A <= B (integers)
    [ "$1" -le "$2" ] 2>/dev/null || fail "${3:-value}: expected $1 <= $2"
}
assert_file() { # PATH
    [ -f "$1" ] || fail "expected file $1 to exist"
}
assert_one_line() { # TEXT [WHAT]: exactly one non-empty line
    local n
    n=$(printf '%s' "$1" | grep -c '')
    [ -n "$1" ] && [ "$n" -eq 1 ] || fail "${2:-stderr}: expected exactly one line, got $n: $(show "$1")"
}

# ---- running commands ---------------------------------------------------------------------

# dbx ARGS...: the devbox binary with a timeout (its own process group; do not use where a
# test signals the client itself or needs a controlling terminal).
dbx() { timeout -k 5 "$DBX_CMD_TIMEOUT" "$DEVBOX" "$@"; }

# run CMD...: run with stdin from /dev/null; sets RC, OUT, ERR (stdout/stderr, trailing newlines
# stripped) and keeps the raw bytes in $TEST_TMP/stdout and $TEST_TMP/stderr.  Logged.
RC=0 OUT='' ERR=''
run() {
    local t0=$SECONDS
    "$@" >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" </dev/null
    RC=$?
    _run_log "$t0" "$@"
}
# run_in DIR CMD...: run in DIR (a subshell; the test's cwd is unchanged).
run_in() {
    local dir=$1 t0=$SECONDS
    shift
    (cd "$dir" && "$@") >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" </dev/null
    RC=$?
    _run_log "$t0" "[in $dir]" "$@"
}
# run_stdin FILE CMD...: like run with stdin from FILE.
run_stdin() {
    local in=$1 t0=$SECONDS
    shift
    "$@" >"$TEST_TMP/stdout" 2>"$TEST_TMP/stderr" <"$in"
    RC=$?
    _run_log "$t0" "[< $in]" "$@"
}
_run_log() {
    local t0=$1
    shift
    OUT=$(tr -d '\0' <"$TEST_TMP/stdout")
    ERR=$(tr -d '\0' <"$TEST_TMP/stderr")
    local cmd="$*"
    [ ${#cmd} -le 2000 ] || cmd="${cmd:0:2000}... (${#cmd} bytes)" # t-exec-basic's 2 MiB
    printf '$ %s  => rc=%s (%ss)\n' "$cmd" "$RC" "$((SECONDS - t0))"
    [ -n "$OUT" ] && printf '  stdout: %s\n' "$(show "$OUT")"
    [ -n "$ERR" ] && printf '  stderr: %s\n' "$(show "$ERR")"
    return 0
}

# expect_rc EXPECTED CMD...: run and check the exit code (prints stderr on mismatch).
expect_rc() {
    local want=$1
    shift
    run "$@"
    [ "$RC" = "$want" ] || fail "'$*' exited $RC, expected $want; stdout: $(show "$OUT"); stderr: $(show "$ERR")"
}
# ok CMD...: run, expect exit 0.
ok() { expect_rc 0 "$@"; }

# ---- repositories and images --------------------------------------------------------------

# make_repo NAME: a fresh git work tree under $TEST_TMP/repos; prints its absolute path.
make_repo() {
    local dir="$TEST_TMP/repos/$1"
    mkdir -p "$dir"
    git -C "$dir" init -q || fail "git init $dir"
    git -C "$dir" config user.email test@example.invalid
    git -C "$dir" config user.name test
    printf '%s\n' "$dir"
}

# import_image [NAME]: import the test image (default name "default") into this DEVBOX_HOME.
import_image() {
    local name=${1:-default}
    run dbx image import "$DBX_TEST_IMAGE" "$name"
    [ "$RC" = 0 ] || fail "image import '$name' failed (rc $RC): $(show "$ERR")"
}

# json_get JSON EXPR: python expression over `j` (the parsed JSON); prints the result
# (strings raw, everything else as JSON).  Fails the test if the JSON does not parse.
json_get() {
    local out
    out=$("$PYTHON" -c '
import json, sys
j = json.loads(sys.argv[1])
v = eval(sys.argv[2], {"j": j})
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2" 2>&1) || fail "json: $2 on $(show "$1"): $out"
    printf '%s\n' "$out"
}

# ---- processes ----------------------------------------------------------------------------

# test_pids [ERE]: pids of processes that belong to this test (their command line mentions
# $TEST_TMP, or their environment has DEVBOX_HOME under it) and whose program name matches
# ERE (default: qemu-system*, virtiofsd, devbox).
test_pids() {
    local pat=${1:-'^(qemu-system.*|virtiofsd|devbox.*)$'} p pid cmd exe
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        [ -n "$cmd" ] || continue
        exe=${cmd%% *}
        exe=${exe##*/}
        [[ $exe =~ $pat ]] || continue
        # (UH: the test's directory in the rootless user's home, see rootless_user)
        if [[ $cmd != *"$TEST_TMP"* ]] && { [ -z "${UH:-}" ] || [[ $cmd != *"$UH"* ]]; }; then
            tr '\0' '\n' 2>/dev/null <"$p/environ" |
                grep -q -e "^DEVBOX_HOME=$TEST_TMP" ${UH:+-e "^DEVBOX_HOME=$UH"} || continue
        fi
        printf '%s\n' "$pid"
    done
}
qemu_pids() { test_pids '^qemu-system'; }
vfsd_pids() { test_pids '^virtiofsd$'; }
count_lines() { grep -c . || true; }

describe_pids() { # PID...: one line per process
    local pid
    for pid in "$@"; do
        printf '%s(%s) ' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
    done
}

# wait_gone SECONDS [ERE]: wait until no matching test process remains; 0 if none is left.
wait_gone() {
    local deadline=$((SECONDS + $1)) left
    while :; do
        left=$(test_pids "${2:-^(qemu-system.*|virtiofsd)$}")
        [ -z "$left" ] && return 0
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

# assert_no_vm_procs [SECONDS]: no qemu-system/virtiofsd of this test within SECONDS (def. 10).
assert_no_vm_procs() {
    if ! wait_gone "${1:-10}"; then
        local left
        left=$(test_pids '^(qemu-system.*|virtiofsd)$')
        # shellcheck disable=SC2086
        fail "processes left after ${1:-10}s: $(describe_pids $left)"
    fi
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds; 1 on timeout.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.2
    done
}

# guest_count PATTERN: how many processes of the current project's box match PATTERN (grep;
# bracket a letter, '[s]leep', so the ps command itself does not match)
guest_count() {
    local n
    n=$(timeout 60 "$DEVBOX" exec -- sh -c 'ps -o pid,args 2>/dev/null || ps' </dev/null | grep -c -- "$1")
    echo "${n:-0}"
}

# guest_running ARGS: how many processes of the box run ARGS (plain words), ARGS ending their
# command line: the process itself, not a shell whose command line holds it.  A test that signals
# a shell's command waits for the command: a signal that reaches the shell's child between fork
# and exec is lost to the shell's own handler there, and one before the shell's trap ends the
# shell (as a terminal's Ctrl-C would).
guest_running() { guest_count " [${1:0:1}]${1:1}\$"; }

# The pid of this test's single QEMU (fails if there is not exactly one).
the_qemu_pid() {
    local p n
    p=$(qemu_pids)
    n=$(printf '%s' "$p" | count_lines)
    [ "$n" = 1 ] || fail "expected one qemu-system process, found $n: $(describe_pids $p)"
    printf '%s\n' "$p"
}

# ---- cleanup ------------------------------------------------------------------------------

# Every test ends here: stop every project it made, then make sure nothing of it survives.
# A leftover qemu-system/virtiofsd fails the test (after being killed).
_cleanup() {
    local rc=$? r left
    trap - EXIT
    set +e
    for r in "$TEST_TMP"/repos/*/; do
        [ -d "$r/.git" ] || continue
        timeout -k 5 60 "$DEVBOX" -C "$r" stop >/dev/null 2>&1 </dev/null
    done
    for hook in "${CLEANUP_HOOKS[@]}"; do eval "$hook"; done
    # servers started by start_netserver (from a subshell, so not in CLEANUP_HOOKS)
    # shellcheck disable=SC2046
    [ -s "$TEST_TMP/servers.pids" ] && kill $(cat "$TEST_TMP/servers.pids") 2>/dev/null
    if ! wait_gone 15; then
        left=$(test_pids '^(qemu-system.*|virtiofsd)$')
        # shellcheck disable=SC2086
        printf '%s\n' "cleanup: processes left after 'devbox stop' of every project: $(describe_pids $left)" \
            >>"$TEST_TMP/failure"
        # shellcheck disable=SC2086
        kill -9 $left 2>/dev/null
        [ "$rc" = 0 ] && rc=1
    fi
    # supervisors or clients still around: not a failure by themselves, but never leave them
    left=$(test_pids '^devbox')
    # shellcheck disable=SC2086
    [ -n "$left" ] && kill -9 $left 2>/dev/null
    exit "$rc"
}
CLEANUP_HOOKS=()
trap _cleanup EXIT
# run.sh's timeout: a failure for _cleanup too ($rc), not the status of the last command
trap 'exit 143' TERM

# Guard: nothing below works without the binary.
[ -x "$DEVBOX" ] || fail "devbox binary not found at $DEVBOX"
log "test $(basename "$0") in $TEST_TMP (devbox: $DEVBOX, accel: $DEVBOX_ACCEL)"

# ---- profiles and policy (t-policy-*, t-profile-*, t-protect-*, t-trust) -------------------

# build_probe DIR [NAME]: compile tests/e2e/NAME.c (default probe.c) statically into DIR/NAME
# (the guest runs it from the share).
build_probe() {
    local name=${2:-probe}
    command -v gcc >/dev/null || skip "gcc not installed (needed for the static probe)"
    gcc -static -O2 -o "$1/$name" "$E2E_DIR/$name.c" >"$TEST_TMP/probe-cc.log" 2>&1 ||
        fail "gcc -static $name.c failed: $(tail -n 3 "$TEST_TMP/probe-cc.log")"
}

# write_profile DIR TEXT: DIR/devbox.ini becomes TEXT (a newline is added).
write_profile() {
    printf '%s\n' "$2" >"$1/devbox.ini" || fail "cannot write $1/devbox.ini"
}

# import_variant NAME MKIMAGE-OPTION...: build a variant of the test image (mkimage.sh options,
# e.g. --add SRC=/PATH:4755) into $TEST_TMP and import it as NAME.
import_variant() {
    local name=$1 img
    shift
    img=$TEST_TMP/image-$name.tar
    "$E2E_DIR/mkimage.sh" "$@" "$img" >"$TEST_TMP/mkimage.log" 2>&1 ||
        fail "mkimage.sh $* failed: $(tail -n 3 "$TEST_TMP/mkimage.log")"
    run dbx image import "$img" "$name"
    [ "$RC" = 0 ] || fail "image import '$name' ($*) failed (rc $RC): $(show "$ERR")"
}

# import_host_progs NAME PROG=/PATH...: the test image plus each host program PROG (a path) at
# /PATH in the box and the libraries it loads, imported as NAME; skips the test when the host
# has no such program.
import_host_progs() {
    local name=$1 spec prog lib add=()
    local -A seen=()
    shift
    for spec in "$@"; do
        prog=$(readlink -f "${spec%%=*}")
        [ -x "$prog" ] || skip "no ${spec%%=*} on the host to put into the image"
        add+=(--add "$prog=${spec#*=}:755")
        while read -r lib; do
            [ -n "$lib" ] && [ -z "${seen[$lib]:-}" ] || continue
            seen[$lib]=1
            add+=(--add "$(readlink -f "$lib")=$lib:755")
        done < <(ldd "$prog" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
    done
    import_variant "$name" "${add[@]}"
}

# import_bash_image NAME: the test image plus the host's bash and the libraries it loads, imported
# as NAME (the busybox image has no bash).
import_bash_image() {
    import_host_progs "$1" /bin/bash=/bin/bash
}

# import_git_image [NAME]: the test image plus the host's git (mkimage.sh --with-git), built
# once into the cache next to DBX_TEST_IMAGE, imported as NAME (default "default").
import_git_image() {
    local name=${1:-default} img
    img=$(git_image_tar) || exit $?
    run dbx image import "$img" "$name"
    [ "$RC" = 0 ] || fail "image import '$name' (with git) failed (rc $RC): $(show "$ERR")"
}

# kv TEXT KEY: the value of the first "KEY=value" line of TEXT (the probe's output format).
kv() {
    local line
    while IFS= read -r line; do
        if [ "${line%%=*}" == "$2" ]; then
            printf '%s\n' "${line#*=}"
            return 0
        fi
    done <<<"$1"
    return 1
}
# assert_kv TEXT KEY ERE [WHAT]: the KEY= line of TEXT exists and its value matches ERE.
assert_kv() {
    local v
    v=$(kv "$1" "$2") || fail "${4:-probe output}: no '$2=' line in $(show "$1")"
    [[ $v =~ ^($3)$ ]] || fail "${4:-probe output}: $2=$v, expected $3"
}

# The capability/no_new_privs/seccomp state every boxed process must have by default.
assert_confined_status() { # PROBE-STATUS-OUTPUT WHAT
    local k
    for k in CapInh CapPrm CapEff CapBnd CapAmb; do
        assert_kv "$1" "$k" 0000000000000000 "$2"
    done
    assert_kv "$1" NoNewPrivs 1 "$2"
    assert_kv "$1" Seccomp 2 "$2"
}

# fingerprint PATH...: one line per file, directory entry and directory: path, inode, mode,
# size, mtime (ns), sha256 of a file's content; "PATH absent" for a missing path.
fingerprint() {
    local f x
    for f in "$@"; do
        if [ -d "$f" ] && [ ! -L "$f" ]; then
            while IFS= read -r x; do _fingerprint1 "$x"; done < <(find "$f" | LC_ALL=C sort)
        else
            _fingerprint1 "$f"
        fi
    done
}
_fingerprint1() {
    if [ -f "$1" ] && [ ! -L "$1" ]; then
        printf '%s %s\n' "$(stat -c '%n %i %f %s %.9Y' "$1")" "$(sha256sum <"$1" | cut -c1-64)"
    elif [ -e "$1" ] || [ -L "$1" ]; then
        stat -c '%n %i %f %s %.9Y' "$1"
    else
        printf '%s absent\n' "$1"
    fi
}

# restart: stop this directory's VM so that the next exec boots with the profile on disk.
restart() {
    ok dbx stop
    assert_no_vm_procs 10
}

# write_attacks FILE: a script for the box (run from the repository root with `sh FILE`) that
# tries to change every default protected path in the ways an agent might, one line per
# attempt: "NAME=blocked" or "NAME=ALLOWED".  It leaves nothing behind when all are blocked.
write_attacks() {
    cat >"$1" <<'ATTACKS'
try() {
    n=$1
    shift
    if ( "$@" ) >/dev/null 2>&1; then echo "$n=ALLOWED"; else echo "$n=blocked"; fi
}
try ini_append sh -c 'echo x >> devbox.ini'
try ini_truncate sh -c ': > devbox.ini'
try ini_mv mv devbox.ini devbox.ini.x
try ini_rm rm -f devbox.ini
try ini_link ln devbox.ini ini-hardlink
try ini_chmod chmod 666 devbox.ini
try ini_touch touch -d '2001-01-01 00:00' devbox.ini
try ini_replace sh -c 'echo "[security]" > ini.new && mv -f ini.new devbox.ini'
try ini_symlink ln -sf /tmp/evil devbox.ini
try git_mv mv .git .git.old
try git_rm_config rm -f .git/config
try git_mv_config mv .git/config .git/config.old
try git_config_append sh -c 'echo >> .git/config'
try git_config_replace sh -c 'cp .git/config .git/cfg.new && echo "[core] fsmonitor = evil" >> .git/cfg.new && mv -f .git/cfg.new .git/config'
try hooks_mkdir mkdir -p .git/hooks/x
try hooks_touch touch .git/hooks/pre-commit
try hooks_write sh -c 'printf "#!/bin/sh\necho pwned\n" > .git/hooks/post-checkout'
try hooks_sample_append sh -c 'echo x >> .git/hooks/pre-commit.sample'
try hooks_sample_rm rm -f .git/hooks/pre-commit.sample
try hooks_mv mv .git/hooks .git/hooks.old
try hooks_rm_rf rm -rf .git/hooks
try hooks_chmod chmod 777 .git/hooks
try gitmodules_append sh -c 'echo x >> .gitmodules'
try gitmodules_rm rm -f .gitmodules
try gitmodules_mv mv .gitmodules gm.old
rm -f ini.new .git/cfg.new 2>/dev/null
exit 0
ATTACKS
}

# assert_all_blocked OUTPUT WHAT: every line of write_attacks' output says "blocked".
assert_all_blocked() {
    local allowed
    allowed=$(printf '%s\n' "$1" | grep '=ALLOWED$' | tr '\n' ' ')
    [ -z "$allowed" ] || fail "$2: allowed: $allowed"
    [ "$(printf '%s\n' "$1" | grep -c '=blocked$')" -ge 25 ] ||
        fail "$2: expected 25 blocked attempts, got $(show "$1")"
}

# ---- Debian image and network tests (t-net-*, t-image-*) -----------------------------------

# debian_tar: a Debian bookworm root filesystem tarball with the default image's packages
# (mmdebstrap from the mirror devbox would build the default image from: `devbox image mirror`,
# the host's apt sources), built once into the cache next to DBX_TEST_IMAGE.
debian_tar() {
    local tar=${DBX_TEST_IMAGE%/*}/debian-bookworm.tar lock
    command -v mmdebstrap >/dev/null || skip "mmdebstrap not installed"
    exec {lock}>"$tar.lock"
    flock "$lock"
    if [ ! -s "$tar" ]; then
        mmdebstrap -q --format=tar --variant=apt --include=ca-certificates,curl,git,procps,less,xz-utils,nano,openssl \
            bookworm "$tar.tmp" "$("$DEVBOX" image mirror)" >"$TEST_TMP/mmdebstrap.log" 2>&1 ||
            fail "mmdebstrap failed: $(tail -n 3 "$TEST_TMP/mmdebstrap.log")"
        mv "$tar.tmp" "$tar"
    fi
    exec {lock}>&-
    printf '%s\n' "$tar"
}

# import_debian [NAME]: import the Debian tarball as NAME (default "default").
import_debian() {
    local tar
    tar=$(debian_tar) || exit $?
    run dbx image import "$tar" "${1:-default}"
    [ "$RC" = 0 ] || fail "image import of the Debian tarball failed (rc $RC): $(show "$ERR")"
}

# free_port: a TCP port unused on 127.0.0.1 and, where the host has IPv6 loopback, on [::1]
# (a forward on the default address listens on both).
free_port() {
    "$PYTHON" -c '
import errno, socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    try:
        t = socket.socket(socket.AF_INET6); t.bind(("::1", p)); t.close()
    except OSError as e:
        if e.errno == errno.EADDRINUSE: continue  # taken there: another
    print(p); break'
}

# test_ca DIR NAME...: a test CA (DIR/ca.pem) and a server certificate DIR/server.{pem,key}
# for the given DNS names.
test_ca() {
    local dir=$1 san="" n
    shift
    for n in "$@"; do san="${san:+$san,}DNS:$n"; done
    mkdir -p "$dir"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=devbox-test-ca \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$dir/server.key" \
                -out "$dir/server.csr" &&
            printf 'subjectAltName=%s\n' "$san" >"$dir/ext" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
                -CAcreateserial -days 2 -extfile "$dir/ext" -out "$dir/server.pem"
    } >"$TEST_TMP/openssl.log" 2>&1 || fail "openssl: $(tail -n 3 "$TEST_TMP/openssl.log")"
}

# start_netserver DIR [netserver.py options...]: serve DIR on loopback (tests/e2e/netserver.py);
# prints the port.  The server is killed when the test ends (its pid goes to a file, not to
# CLEANUP_HOOKS: callers run this in a command substitution, a subshell).
start_netserver() {
    local dir=$1 pf pid
    shift
    pf=$(mktemp "$TEST_TMP/port.XXXXXX")
    rm -f "$pf"
    "$PYTHON" "$E2E_DIR/netserver.py" "$dir" "$pf" "$@" >>"$TEST_TMP/netserver.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >>"$TEST_TMP/servers.pids"
    wait_until 20 test -s "$pf" || fail "netserver.py did not start: $(tail -n 3 "$TEST_TMP/netserver.log")"
    cat "$pf"
}

# ---- an ordinary user (t-rootless, t-image-rootless) -------------------------------------------

# rootless_user: set up the test user dbxtest as a distribution makes users (Debian's adduser:
# a real home, /home/dbxtest, mode 0700; /etc/subuid and /etc/subgid ranges) and copy devbox,
# the guest init, the test image and the kernel package where it can reach them.  Sets
# TU TUHOME tuid tgid sub_start sub_count U UD UH RU and defines as_user CMD... (needs root; skips
# otherwise).  UH is this test's directory inside the user's home (removed at the end); RU
# (a repo path, not created) and DEVBOX_HOME ($UH/dbx) are below it.
rootless_user() {
    [ "$(id -u)" = 0 ] || skip "needs root to create and switch to the test user"
    command -v runuser >/dev/null || skip "runuser not installed"
    command -v newuidmap >/dev/null || fail "newuidmap missing (package uidmap)"
    command -v adduser >/dev/null || fail "adduser missing (package adduser)"

    TU=$E2E_USER
    if ! id "$TU" >/dev/null 2>&1; then
        adduser --quiet --disabled-password --gecos '' --home "/home/$TU" "$TU" >/dev/null ||
            fail "adduser $TU"
    fi
    TUHOME=$(getent passwd "$TU" | cut -d: -f6)
    [ -n "$TUHOME" ] && [ -d "$TUHOME" ] || fail "$TU has no home directory ($TUHOME)"
    # A user made by an older setup may have a 0755 home; the tests want the private default.
    chmod 700 "$TUHOME" || fail "chmod 700 $TUHOME"
    if ! grep -q "^$TU:" /etc/subuid || ! grep -q "^$TU:" /etc/subgid; then
        usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$TU" || fail "usermod --add-subuids"
    fi
    tuid=$(id -u "$TU")
    tgid=$(id -g "$TU")
    IFS=: read -r _ sub_start sub_count < <(grep "^$TU:" /etc/subuid | head -n 1)
    log "user $TU uid $tuid gid $tgid home $TUHOME ($(stat -c %a "$TUHOME")), subuids $sub_start+$sub_count"

    # Everything the user needs, in places it can reach: the binaries, the image, the kernel.
    chmod 711 "$TEST_TMP"
    U=$TEST_TMP/u
    mkdir -p "$U/bin" "$U/share"
    cp "$DEVBOX" "$U/bin/devbox" || fail "copy devbox"
    # the lean client hands most commands to the full devbox next to it
    full=$(dirname "$DEVBOX")/devbox-full
    if [ -f "$full" ]; then cp "$full" "$U/bin/devbox-full" || fail "copy devbox-full"; fi
    # and the full devbox starts virtiofsd's guard from devbox-guard next to it
    guard=$(dirname "$DEVBOX")/devbox-guard
    if [ -f "$guard" ]; then cp "$guard" "$U/bin/devbox-guard" || fail "copy devbox-guard"; fi
    init=${DEVBOX_INIT:-$(dirname "$DEVBOX")/devbox-init}
    [ -f "$init" ] || fail "guest init not found at $init"
    cp "$init" "$U/bin/devbox-init" || fail "copy devbox-init"
    # the devbox kernel's config fragment, where `make install` puts it for that binary
    cp "$REPO_ROOT/vm/devbox-kernel.config" "$U/bin/" || fail "copy devbox-kernel.config"
    cp "$DBX_TEST_IMAGE" "$U/share/rootfs.tar"
    cp "$DEVBOX_KERNEL_DEB" "$U/share/$(basename "$DEVBOX_KERNEL_DEB")"
    chmod 755 "$U" "$U/bin" "$U/share" "$U/bin/"*
    chmod 644 "$U/share/"*

    # This test's corner of the real home (short: unix socket paths are limited to 108 bytes).
    UH=$TUHOME/t.${TEST_TMP##*.}
    rm -rf "$UH"
    runuser -u "$TU" -- mkdir -m 700 "$UH" || fail "mkdir $UH as $TU"

    as_user() {
        runuser -u "$TU" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$TUHOME" USER="$TU" \
            ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
            LOGNAME="$TU" DEVBOX_HOME="$UH/dbx" DEVBOX_ACCEL="$DEVBOX_ACCEL" \
            DEVBOX_KERNEL_DEB="$U/share/$(basename "$DEVBOX_KERNEL_DEB")" \
            DEVBOX_KERNEL="${DEVBOX_KERNEL:-auto}" \
            ${DEVBOX_KERNEL_CACHE:+DEVBOX_KERNEL_CACHE="$DEVBOX_KERNEL_CACHE"} \
            ${DEVBOX_KERNEL_VMLINUX:+DEVBOX_KERNEL_VMLINUX="$DEVBOX_KERNEL_VMLINUX"} "$@"
    }
    UD="$U/bin/devbox"
    RU=$UH/repo
    CLEANUP_HOOKS+=("as_user timeout 60 $UD -C $RU stop >/dev/null 2>&1 </dev/null")
    # after every stop: wait_gone in _cleanup still finds leftovers through UH.  A failed test's
    # UH stays ($rc: _cleanup's): run.sh keeps its logs for the report and removes it.
    CLEANUP_HOOKS+=("[ \"\$rc\" != 0 ] || rm -rf '$UH'")
}

# ---- the workspace share (t-share-*, t-protect-*) ------------------------------------------

# box_uid, box_gid: the box user's ids in the guest: the host user's, except for host root,
# whose box user is uid/gid 1000 (mapped back to root on the host; docs/SECURITY.md).
box_uid() { if [ "$(id -u)" = 0 ]; then echo 1000; else id -u; fi; }
box_gid() { if [ "$(id -u)" = 0 ]; then echo 1000; else id -g; fi; }

# git_image_tar: path of the test image plus the host's git (mkimage.sh --with-git), built once
# into the cache next to DBX_TEST_IMAGE.
git_image_tar() {
    local img git lock
    git=$(command -v git) || skip "git not installed on the host"
    img=${DBX_TEST_IMAGE%.tar}-git.tar
    # one builder at a time: the tests run two at a time, and in a fresh clone mkimage.sh is
    # newer than the cached image, so two tests that import it both rebuilt it (and, sharing
    # mkimage.sh's temporary name then, one's rename failed: found in a full run)
    exec {lock}>"$img.lock"
    flock "$lock"
    if [ ! -s "$img" ] || [ "$E2E_DIR/mkimage.sh" -nt "$img" ] || [ "$(readlink -f "$git")" -nt "$img" ]; then
        "$E2E_DIR/mkimage.sh" --with-git "$img" >"$TEST_TMP/mkimage.log" 2>&1 ||
            fail "mkimage.sh --with-git failed: $(tail -n 3 "$TEST_TMP/mkimage.log")"
    fi
    exec {lock}>&-
    printf '%s\n' "$img"
}

# ---- shared test fixtures (issue 14) ----------------------------------------------------------

# submodule_repo: the test image with git imported; the repository "proj" in R (and the cwd)
# whose first host commit has base.txt and a submodule "sub" cloned from a local source.  Sets
# HG (the host's git with a test identity and file:// submodules allowed) and M (an empty
# world-writable directory for the markers a planted hook or fsmonitor would create on the
# host).  Used by t-protect-gitdir and t-protect-nested.
submodule_repo() {
    local s=$TEST_TMP/subsrc
    import_git_image
    HG=(git -c protocol.file.allow=always -c user.name=t -c user.email=t@t)
    git init -q "$s" && "${HG[@]}" -C "$s" commit -q --allow-empty -m sub || fail "submodule source"
    R=$(make_repo proj)
    cd "$R" || fail "cd $R"
    echo base >base.txt
    "${HG[@]}" add base.txt && "${HG[@]}" submodule add -q "$s" sub >/dev/null 2>&1 &&
        "${HG[@]}" commit -qm base || fail "host commit with a submodule"
    M=$TEST_TMP/marks
    mkdir -p "$M"
    chmod 777 "$M"
}

# state_is STATE: `devbox status --json` says STATE (false on any failure: a polling predicate
# for wait_until).  Used by t-disk-full, t-guest-hang and t-guest-panic.
state_is() {
    dbx status --json 2>/dev/null | "$PYTHON" -c \
        'import json, sys; sys.exit(json.load(sys.stdin).get("state") != sys.argv[1])' "$1" 2>/dev/null
}

# netns_host NAME SUBNET: a test host in a network namespace of its own (NETNS, named NAME and
# this shell's pid), joined to the host by a veth: SUBNET.1 (three octets given) on the host
# side, SUBNET.2 in the namespace, loopback up there; all removed when the test ends.  Used by
# t-net-open and t-qemu-caps.
netns_host() {
    local vh=${1}h$$ vn=${1}n$$
    NETNS=$1$$
    ip netns add "$NETNS" || fail "ip netns add"
    CLEANUP_HOOKS+=("ip netns del $NETNS 2>/dev/null; ip link del $vh 2>/dev/null")
    ip link add "$vh" type veth peer name "$vn" netns "$NETNS" || fail "ip link add veth"
    ip addr add "$2.1/24" dev "$vh" && ip link set "$vh" up || fail "host side of the veth"
    ip -n "$NETNS" addr add "$2.2/24" dev "$vn" && ip -n "$NETNS" link set "$vn" up &&
        ip -n "$NETNS" link set lo up || fail "namespace side of the veth"
}

# kernel_box DIR: DIR's profile makes the box user root with sys_admin and no seccomp filter
# (what a test needs to panic or wedge the guest kernel on purpose), trusted, and the VM booted.
# Used by t-guest-panic and t-guest-panic-console.
kernel_box() {
    write_profile "$1" $'[security]\nuser = root\ncapabilities = sys_admin\nseccomp = unconfined'
    ok dbx trust
    ok dbx exec -- true
}

# Run `sh SCRIPT` in the box as the default user and as root; the script prints "done" and,
# for each attack that was not refused, a line before it (t-protect-gitdir, t-protect-nested).
attacks_as_default_and_root() {
    local script=$1 who
    for who in default root; do
        local u=()
        [ $who = root ] && u=(-u root)
        ok dbx exec "${u[@]}" -- sh "$script"
        assert_eq done "$OUT" "attacks as $who that were allowed"
    done
}

# ---- [setup] fixtures (t-setup-*) --------------------------------------------------------------

# setup_run CMD...: the `run =` key of a [setup] section, one command a line (continuation
# lines indented).  No command may hold " ;" (inih starts a comment there).
setup_run() {
    local pre='run = ' c
    for c in "$@"; do
        [[ $c == *' ;'* || $c == *$'\t;'* ]] && fail "setup_run: ';' after whitespace starts a comment: $c"
        printf '%s%s\n' "$pre" "$c"
        pre='      '
    done
}

# assert_setup_progress TEXT TOTAL WHAT CMD...: the progress lines of TEXT (a starting client's
# stderr: "devbox: setup [N/TOTAL]: CMD", or `devbox logs --setup`, whatever comes before
# "setup [") are exactly one per CMD, in order: N is 1, 2, ... and TOTAL the number of lines.
assert_setup_progress() {
    local text=$1 total=$2 what=$3 want='' i=0 c got
    shift 3
    for c in "$@"; do
        i=$((i + 1))
        want+="setup [$i/$total]: $c"$'\n'
    done
    got=$(printf '%s\n' "$text" | grep -E 'setup \[[0-9]+/[0-9]+\]: ' | sed -E 's/^.*(setup \[[0-9]+\/)/\1/')
    assert_eq "${want%$'\n'}" "$got" "$what: setup progress lines"
}

# http_files DIR: serve DIR over plain HTTP on 127.0.0.1 (netserver.py: static files, also what
# busybox wget fetches through the allowlist proxy); prints the port.
http_files() {
    [ -d "$1" ] || fail "http_files: no directory $1"
    start_netserver "$1"
}

# tls_server DIR NAME: HTTPS on 127.0.0.1 with DIR/server.pem, a certificate for NAME signed by
# the test CA DIR/ca.pem (test_ca DIR NAME, made here unless DIR has one); GET / answers
# "ca-ok".  The files served are DIR/www (a test may add more there, e.g. a bare git
# repository after `git update-server-info`).  Prints the port.
tls_server() {
    local dir=$1
    [ -s "$dir/ca.pem" ] || test_ca "$dir" "$2"
    mkdir -p "$dir/www" && echo ca-ok >"$dir/www/index.html" || fail "tls_server: cannot write $dir/www"
    start_netserver "$dir/www" --tls "$dir/server.pem" "$dir/server.key"
}

# apt_repo DIR: a flat apt repository in DIR/repo ("deb [trusted=yes] http://HOST:PORT/ ./")
# with one package, devbox-hello 1.0 (Architecture: all), whose /usr/bin/devbox-hello prints
# "hello from devbox-hello"; served on 127.0.0.1 and read once by the host's apt (update and
# download with private lists and cache, nothing installed) so that a broken fixture fails
# here, not in the box.  Prints the port (call it as `P=$(apt_repo DIR) || exit $?`).
apt_repo() {
    local dir=$1 pkg=$1/pkg repo=$1/repo port
    command -v dpkg-deb >/dev/null && command -v dpkg-scanpackages >/dev/null ||
        skip "dpkg-scanpackages not installed (package dpkg-dev)"
    mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$repo" || fail "apt_repo: mkdir under $dir"
    printf '#!/bin/sh\necho "hello from devbox-hello"\n' >"$pkg/usr/bin/devbox-hello"
    chmod 755 "$pkg/usr/bin/devbox-hello" "$pkg" "$pkg/DEBIAN"
    cat >"$pkg/DEBIAN/control" <<'CONTROL'
Package: devbox-hello
Version: 1.0
Architecture: all
Maintainer: devbox tests <test@example.invalid>
Description: devbox end-to-end test package
 Prints a greeting; the [setup] tests install it from a repository on loopback.
CONTROL
    {
        dpkg-deb --build --root-owner-group "$pkg" "$repo/devbox-hello_1.0_all.deb" &&
            (cd "$repo" && dpkg-scanpackages --multiversion . /dev/null >Packages) &&
            gzip -9nkf "$repo/Packages"
    } >"$TEST_TMP/apt-repo.log" 2>&1 || fail "apt_repo: building the repository: $(tail -n 3 "$TEST_TMP/apt-repo.log")"
    grep -q '^Package: devbox-hello$' "$repo/Packages" || fail "apt_repo: no devbox-hello in $repo/Packages"
    port=$(start_netserver "$repo") || exit $?
    _apt_repo_check "$dir/apt-check" "$port"
    printf '%s\n' "$port"
}
# _apt_repo_check DIR PORT: the host's apt-get reads the repository at PORT and downloads the
# package (its own sources, lists and cache in DIR; no proxy; the host's apt state untouched).
_apt_repo_check() {
    local t=$1 port=$2 opts apt
    command -v apt-get >/dev/null || return 0
    mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/parts" || fail "apt_repo: mkdir $t"
    echo "deb [trusted=yes] http://127.0.0.1:$port/ ./" >"$t/sources.list"
    opts=(-o Dir::Etc::sourcelist="$t/sources.list" -o Dir::Etc::sourceparts="$t/parts"
        -o Dir::State::Lists="$t/lists" -o Dir::Cache="$t/cache" -o Debug::NoLocking=1)
    apt=(env -u http_proxy -u HTTP_PROXY apt-get -q "${opts[@]}" -o APT::Sandbox::User="$(id -un)"
        -o Acquire::http::Proxy=DIRECT)
    "${apt[@]}" update >"$t/update.log" 2>&1 ||
        fail "apt_repo: the host's apt-get update cannot read the repository: $(tail -n 3 "$t/update.log")"
    # (the lists may be stored compressed: ask apt-cache, not grep)
    apt-cache "${opts[@]}" policy devbox-hello >"$t/policy.log" 2>&1
    grep -q "Candidate: 1.0" "$t/policy.log" ||
        fail "apt_repo: apt-get update found no devbox-hello 1.0: $(tr '\n' ' ' <"$t/policy.log")"
    (cd "$t" && "${apt[@]}" download devbox-hello) >"$t/download.log" 2>&1 &&
        [ -s "$t/devbox-hello_1.0_all.deb" ] ||
        fail "apt_repo: the host's apt-get download devbox-hello failed: $(tail -n 3 "$t/download.log")"
}
