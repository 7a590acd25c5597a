#!/usr/bin/env bash
# t-supervisor-trim: a box's supervisor lets go of the library pages its start ran (issue 12):
# a couple of seconds after the box is ready it logs how many KiB of its read-only file mappings
# it unmapped, and its own smaps then shows those mappings holding a small part of that; the
# box goes on serving commands (which map back what they need) and stops cleanly.  One boot.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- true
sup=$(json_get "$(dbx status --json)" 'j["pid"]')
[ -n "$sup" ] && [ -d "/proc/$sup" ] || fail "no supervisor process: '$sup'"
id=$(json_get "$(dbx status --json)" 'j["id"]')
log="$DEVBOX_HOME/state/projects/$id/supervisor.log"
trimmed() { grep -o 'unmapped [0-9]* KiB of library pages the start used' "$log"; }
wait_until 30 trimmed >/dev/null || fail "no trim in the supervisor's log: $(tail -n 3 "$log")"
line=$(trimmed)
assert_one_line "$line" "trim lines in one boot"
kib=$(printf '%s\n' "$line" | grep -o '[0-9]*' | head -n 1)
# the start ran libcrypto, libgit2, libarchive and the rest: megabytes of their code
[ "$kib" -ge 2048 ] || fail "the supervisor unmapped only $kib KiB: $line"

# what the same rule counts now: read-only file mappings without private pages
resident() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { cand = ($2 ~ /^r-/ && $5 != 0 && $6 ~ /^\//); rss = 0; next }
         /^Rss:/ { rss = $2 }
         /^Anonymous:/ { if (cand && $2 == 0) total += rss }
         END { print total + 0 }' "/proc/$sup/smaps"
}
now=$(resident)
[ "$now" -lt $((kib / 4)) ] ||
    fail "the supervisor's read-only file mappings hold $now KiB after unmapping $kib KiB"

# it still serves: commands, their output, status; and stops cleanly
ok dbx exec -- sh -c 'echo served; exit 0'
assert_eq served "$OUT" "a command after the trim"
ok dbx status --json
after=$(resident)
[ "$after" -lt $((kib / 2)) ] || fail "a command mapped back $after of $kib KiB"
ok dbx stop
state_is stopped || fail "the box did not stop after the trim"
