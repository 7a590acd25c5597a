#!/usr/bin/env bash
# t-status: status --json and ls --json fields through a project's life; devbox.ini's [box]
# image/cpus/memory take effect; status, ps, stats, events, logs and restart on another project
# by PATH or ID, and a restart refused once its repository is gone.
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

# the per-project commands on another project, by PATH or ID (as stop and rm take them), from
# outside any project
id=$(json_get "$st" 'j["id"]')
run_in / dbx status --json "$R"
assert_eq 0 "$RC" "status --json PATH: $(show "$ERR")"
assert_eq "running $R" "$(json_get "$OUT" 'j["state"] + " " + j["project"]')" "status --json PATH"
run_in / dbx status --json "${id:0:6}"
assert_eq "$R" "$(json_get "$OUT" 'j["project"]')" "status --json of an id prefix"
run_in / dbx ps --json "$R"
assert_eq 0 "$RC" "ps --json PATH: $(show "$ERR")"
assert_eq true "$(json_get "$OUT" 'isinstance(j, list)')" "ps --json PATH is an array"
run_in / dbx stats --json "$id"
assert_eq 0 "$RC" "stats --json ID: $(show "$ERR")"
assert_eq true "$(json_get "$OUT" '"memory_current" in j')" "stats --json ID: $(show "$OUT")"
run_in / dbx events --json -n 1 "$id"
assert_eq true "$(json_get "$OUT" '"type" in j and "time" in j')" "the last event, by ID: $(show "$OUT")"
run_in / dbx logs --console -n 2 "$R"
assert_eq 0 "$RC" "logs --console -n 2 PATH: $(show "$ERR")"
[ -n "$OUT" ] && [ "$(printf '%s\n' "$OUT" | grep -c '')" -le 2 ] ||
    fail "logs --console -n 2 PATH: $(show "$OUT")"
run_in / dbx status "$TEST_TMP/repos"
assert_eq 125 "$RC" "status of a directory that is no project"
assert_contains "$ERR" "not a project devbox knows" "status of a directory that is no project"

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

# restart by PATH from outside the project: a new VM
run_in / dbx status --json "$R2"
pid2=$(json_get "$OUT" 'j["pid"]')
id2=$(json_get "$OUT" 'j["id"]')
run_in / dbx restart "$R2"
assert_eq 0 "$RC" "restart PATH: $(show "$ERR")"
run_in / dbx status --json "$id2"
assert_eq running "$(json_get "$OUT" 'j["state"]')" "state after restart PATH"
assert_ne "$pid2" "$(json_get "$OUT" 'j["pid"]')" "pid after restart PATH"

# its repository deleted under the running box: restart ID refuses in one line and leaves the box
# running; status and ps by ID still answer; stop ID stops it, and ps then says so (exit 0)
rm -rf --one-file-system -- "$R2"
run_in / dbx restart "$id2"
assert_eq 125 "$RC" "restart of a project whose repository is gone"
assert_one_line "$ERR" "restart of a project whose repository is gone"
assert_contains "$ERR" "devbox: restart: the repository '$R2' is gone: nothing to start" "restart of a gone project"
run_in / dbx status --json "$id2"
assert_eq running "$(json_get "$OUT" 'j["state"]')" "a gone project's box after the refused restart"
run_in / dbx ps --json "$id2"
assert_eq 0 "$RC" "ps --json of a gone project's box: $(show "$ERR")"
run_in / dbx stop "$id2"
assert_eq 0 "$RC" "stop ID: $(show "$ERR")"
run_in / dbx ps --json "$id2"
assert_eq "0 []" "$RC $OUT" "ps --json of a stopped box"
