#!/usr/bin/env bash
# t-status: status --json and ls --json fields through a project's life; devbox.ini's [box]
# image/cpus/memory take effect.
. "$(dirname "$0")/lib.sh"

import_image
import_image alt
R=$(make_repo proj)
cd "$R" || fail "cd $R"
printf '[box]\nmemory = 384M\ncpus = 2\n' >"$R/devbox.ini"

ok dbx status --json
assert_eq stopped "$(json_get "$OUT" 'j["state"]')" "state before the first exec"

ok dbx exec -- true
ok dbx status --json
st=$OUT
for k in state accel pid uptime_s memory_mib image project; do
    assert_eq true "$(json_get "$st" "'$k' in j")" "key '$k' in status --json"
done
assert_eq running "$(json_get "$st" 'j["state"]')" "state"
assert_eq tcg "$(json_get "$st" 'j["accel"]')" "accel"
assert_eq 384 "$(json_get "$st" 'j["memory_mib"]')" "memory_mib with memory = 384M"
assert_eq default "$(json_get "$st" 'j["image"]')" "image"
assert_eq "$R" "$(json_get "$st" 'j["project"]')" "project"
assert_eq true "$(json_get "$st" 'isinstance(j["uptime_s"], (int, float)) and j["uptime_s"] >= 0')" "uptime_s is a number >= 0"
pid=$(json_get "$st" 'j["pid"]')
assert_match "$pid" '^[1-9][0-9]*$' "pid"
kill -0 "$pid" 2>/dev/null || fail "status pid $pid is not a live process"

# the config reached the VM
ok dbx exec -- grep -c ^processor /proc/cpuinfo
assert_eq 2 "$OUT" "guest CPUs with cpus = 2"
ok dbx exec -- awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo
mem=$OUT
assert_le "$mem" 384 "guest MemTotal (MiB) with memory = 384M"
assert_le 250 "$mem" "guest MemTotal (MiB) with memory = 384M"

sleep 2
ok dbx status --json
assert_eq true "$(json_get "$OUT" 'j["uptime_s"] >= 2')" "uptime_s grows: $(show "$OUT")"

ok dbx ls --json
ls_json=$OUT
assert_eq true "$(json_get "$ls_json" 'isinstance(j, list)')" "ls --json is an array"
entry=$(json_get "$ls_json" "[e for e in j if e.get('project') == '$R']")
assert_eq 1 "$(json_get "$entry" 'len(j)')" "entries for $R in ls --json: $(show "$ls_json")"
assert_eq running "$(json_get "$entry" 'j[0]["state"]')" "state in ls --json"
assert_eq default "$(json_get "$entry" 'j[0]["image"]')" "image in ls --json"

# a second project on another image
R2=$(make_repo other)
printf '[box]\nimage = alt\n' >"$R2/devbox.ini"
run_in "$R2" dbx exec -- cat /etc/devbox-test-image
assert_eq 0 "$RC" "exec in a project on image 'alt': $(show "$ERR")"
run_in "$R2" dbx status --json
assert_eq alt "$(json_get "$OUT" 'j["image"]')" "image of the second project"
ok dbx ls --json
assert_eq 2 "$(json_get "$OUT" "len([e for e in j if e.get('project') in ('$R', '$R2')])")" "projects in ls --json: $(show "$OUT")"

# stop: state stopped, the process is gone, ls agrees
ok dbx stop
ok dbx status --json
assert_eq stopped "$(json_get "$OUT" 'j["state"]')" "state after stop"
wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" || fail "pid $pid from status still alive after stop"
ok dbx ls --json
assert_eq stopped "$(json_get "$OUT" "[e for e in j if e.get('project') == '$R'][0]['state']")" "state in ls --json after stop"
assert_eq running "$(json_get "$OUT" "[e for e in j if e.get('project') == '$R2'][0]['state']")" "the other project keeps running"

# plain status works too
ok dbx status
[ -n "$OUT" ] || fail "'devbox status' printed nothing"
