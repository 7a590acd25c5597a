#!/usr/bin/env bash
# t-stats: `devbox stats` (human, --json, --watch) shows a memory hog's usage from the box
# cgroup; an OOM kill and a fork refused at pids.max each get the one-line explanation on
# stderr with the command's exit code unchanged; an ordinary failure gets none, and neither does a
# command killed by `devbox kill` while another session was OOM-killed (the OOM count is the
# session's own leaf's); stats of a stopped VM says so and exits 0, as ps does (--json: {}).
# One boot.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
command -v gcc >/dev/null || skip "gcc not installed (needed for the static stressor)"
# hold MB FILE: touch MB MiB, create FILE, sleep; pids: fork children that wait until fork
# fails, then end them and exit 11 (EAGAIN) like a build that hit the limit.  The program's own
# pages are locked: at the memory limit the kernel would otherwise evict and re-read them from
# the share over and over (slow under TCG) before it gives up and OOM-kills.
gcc -static -O2 -o "$R/stressor" -x c - >"$TEST_TMP/cc.log" 2>&1 <<'C' || fail "gcc stressor: $(tail -n 3 "$TEST_TMP/cc.log")"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "hold")) {
        mlockall(MCL_CURRENT);
        for (long i = 0; i < atol(argv[2]); i++) memset(malloc(1 << 20), 1, 1 << 20);
        close(open(argv[3], O_WRONLY | O_CREAT, 0644));
        sleep(120);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "pids")) {
        static pid_t kids[4096];
        int n = 0;
        for (; n < 4096; n++) {
            pid_t p = fork();
            if (p == 0) { pause(); _exit(0); }
            if (p < 0) {
                int e = errno;
                for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
                while (wait(NULL) > 0) {}
                fprintf(stderr, "fork: %s after %d children\n", strerror(e), n);
                return e == EAGAIN ? 11 : 1;
            }
            kids[n] = p;
        }
        return 0;
    }
    return 2;
}
C
write_profile "$R" '[limits]
memory = 128M
swap = 0
pids = 40'

# ---- not running ---------------------------------------------------------------------------
ok dbx stats
assert_eq "the box is not running" "$OUT" "stats of a stopped VM"
ok dbx stats --json
assert_eq "{}" "$OUT" "stats --json of a stopped VM"

# ---- a held memory hog ---------------------------------------------------------------------
ok dbx exec true
timeout -k 5 60 "$DEVBOX" exec -- ./stressor hold 64 "$R/held" >/dev/null 2>&1 </dev/null &
hog=$!
wait_until 40 test -e "$R/held" || fail "the memory hog did not start within 40s"
ok dbx stats --json
js=$OUT
printf '%s\n' "$js" | "$PYTHON" -m json.tool >/dev/null || fail "stats --json does not parse: $(show "$js")"
for k in cpu_usage_us memory_current memory_peak memory_max pids_current pids_max oom_kills pids_refused; do
    assert_eq true "$(json_get "$js" "isinstance(j.get('$k'), int)")" "key '$k' in stats --json"
done
assert_le $((64 << 20)) "$(json_get "$js" 'j["memory_current"]')" "memory_current while 64 MiB are held"
assert_le $((64 << 20)) "$(json_get "$js" 'j["memory_peak"]')" "memory_peak while 64 MiB are held"
assert_eq $((128 << 20)) "$(json_get "$js" 'j["memory_max"]')" "memory_max"
assert_eq 40 "$(json_get "$js" 'j["pids_max"]')" "pids_max"
assert_eq 0 "$(json_get "$js" 'j["oom_kills"]')" "oom_kills before any OOM"
ok dbx stats
assert_match "$OUT" 'memory +[0-9.]+M of 128M, peak [0-9.]+M' "stats memory line"
assert_match "$OUT" 'pids +[0-9]+ of 40' "stats pids line"
kill "$hog" 2>/dev/null
wait "$hog" 2>/dev/null

# --watch repeats until interrupted
run timeout -s INT 3 "$DEVBOX" stats --watch
assert_le 2 "$(grep -c '^memory' <<<"$OUT")" "samples of stats --watch in 3s"

# ---- the one-line explanations ---------------------------------------------------------------
# a bystander session runs through the OOM kill below, then is killed from the host
rm -f "$R/bystander"
timeout -k 5 120 "$DEVBOX" exec -- ./stressor hold 1 "$R/bystander" >/dev/null \
    2>"$TEST_TMP/bystander.err" </dev/null &
bystander=$!
wait_until 40 test -e "$R/bystander" || fail "the bystander did not start within 40s"
expect_rc 137 dbx exec -- ./stressor hold 400 /dev/null
assert_match "$ERR" "^devbox: './stressor hold 400 /dev/null' was killed: out of memory \(limit 128M, peak [0-9.]+M\)$" "OOM line"
assert_one_line "$ERR" "stderr of the OOM-killed command"
ok dbx kill -s KILL --all
rc=0
wait "$bystander" || rc=$?
assert_eq 137 "$rc" "exit code of the bystander killed by devbox kill"
assert_eq "" "$(cat "$TEST_TMP/bystander.err")" "stderr of the bystander (no OOM line for another's OOM kill)"

expect_rc 11 dbx exec -- ./stressor pids
assert_contains "$ERR" "devbox: './stressor pids' hit the box's process limit (pids.max 40)" "pids line"

# an ordinary failure (after both counters grew) is not explained
expect_rc 3 dbx exec -- sh -c 'exit 3'
assert_eq "" "$ERR" "stderr of an ordinary failure"

ok dbx stats --json
assert_le 1 "$(json_get "$OUT" 'j["oom_kills"]')" "oom_kills after the OOM"
assert_le 1 "$(json_get "$OUT" 'j["pids_refused"]')" "pids_refused after the pids test"
log "t-stats: ok"
