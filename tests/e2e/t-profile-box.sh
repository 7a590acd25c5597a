#!/usr/bin/env bash
# t-profile-box: [box] and [env] from devbox.ini reach the VM (cpus, memory, hostname,
# environment), a profile that extends the built-in `strict` runs with strict's limits,
# filter and extra protected paths, and the user's config.ini [defaults] apply without trust.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || skip "needs 2 host CPUs (cpus = 2 must stay under the ceiling)"

write_profile "$R" '[box]
cpus = 2
memory = 768M
hostname = testbox

[env]
FOO = bar baz
EDITOR = vi'
ok dbx profile check
assert_eq ok "$OUT" "profile check"
ok dbx exec -- sh -c 'echo "cpus=$(nproc)"; echo "host=$(hostname)"; echo "foo=$FOO"; echo "editor=$EDITOR"; echo "mem=$(sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo)"'
st=$OUT
assert_kv "$st" cpus 2 "nproc in the box"
assert_kv "$st" host testbox "hostname in the box"
assert_kv "$st" foo "bar baz" "FOO from [env]"
assert_kv "$st" editor vi "EDITOR from [env]"
mem=$(kv "$st" mem)
[ "$mem" -gt $((600 * 1024)) ] && [ "$mem" -le $((768 * 1024)) ] ||
    fail "MemTotal ${mem} kB for memory = 768M"
ok dbx status --json
assert_eq 2 "$(json_get "$OUT" 'j["cpus"]')" "cpus in devbox status"
assert_eq 768 "$(json_get "$OUT" 'j["memory_mib"]')" "memory_mib in devbox status"
# -e on the command line still wins for one command
ok dbx exec -e FOO=cli -- sh -c 'echo $FOO'
assert_eq cli "$OUT" "-e over [env]"

# ---- extends = strict --------------------------------------------------------------------
mkdir -p "$R/.vscode" "$R/.github/workflows"
echo '{}' >"$R/.vscode/tasks.json"
echo 'on: push' >"$R/.github/workflows/ci.yml"
echo 'stages: []' >"$R/.gitlab-ci.yml"
echo 'use nix' >"$R/.envrc"
write_profile "$R" 'extends = strict'
restart
ok dbx exec -- sh -c './probe status; cd /sys/fs/cgroup/box; for f in pids.max memory.max cpu.max; do echo "$f=$(cat $f)"; done; echo "nofile=$(ulimit -n)"'
st=$OUT
assert_confined_status "$st" "extends = strict"
assert_kv "$st" pids.max 256 "strict pids.max"
assert_kv "$st" memory.max $((256 << 20)) "strict memory.max"
read -r quota period <<<"$(kv "$st" cpu.max)"
assert_eq 500 $((quota * 1000 / period)) "strict cpu.max in thousandths of a CPU ($quota $period)"
assert_kv "$st" nofile 1024 "strict RLIMIT_NOFILE"
before=$(fingerprint .envrc .vscode .github/workflows .gitlab-ci.yml)
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    ok dbx exec "${u[@]}" -- sh -c '
        for c in "echo x >> .envrc" "rm -f .envrc" "echo x > .vscode/settings.json" \
                 "echo x >> .vscode/tasks.json" "mv .vscode v2" "echo x >> .github/workflows/ci.yml" \
                 "echo x > .github/workflows/evil.yml" "mv .github g2" "echo x >> .gitlab-ci.yml"; do
            if sh -c "$c" >/dev/null 2>&1; then echo "ALLOWED: $c"; fi
        done
        echo finished'
    assert_eq finished "$OUT" "strict's extra protected paths as $who"
done
assert_eq "$before" "$(fingerprint .envrc .vscode .github/workflows .gitlab-ci.yml)" "strict's protected paths on the host"

# ---- the user's config.ini [defaults] is not a repo widening ------------------------------
rm -f "$R/devbox.ini"
mkdir -p "$DEVBOX_HOME/config"
printf '[defaults]\nenv.FROM_CONFIG = yes\nlimits.pids = 9000\n' >"$DEVBOX_HOME/config/config.ini"
restart
ok dbx exec -- sh -c 'echo "v=$FROM_CONFIG"; echo "pids=$(cat /sys/fs/cgroup/box/pids.max)"'
assert_kv "$OUT" v yes "env from config.ini [defaults]"
assert_kv "$OUT" pids 9000 "pids.max from config.ini [defaults] (the user's own setting, no trust)"
ok dbx profile show --json
assert_contains "$(json_get "$OUT" 'j["limits"]["pids"]["from"]')" "config.ini" "origin of pids from config.ini"
