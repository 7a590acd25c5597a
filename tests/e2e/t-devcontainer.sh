#!/usr/bin/env bash
# t-devcontainer: a repo with only .devcontainer/devcontainer.json (comments, trailing commas,
# postCreateCommand as an array, containerEnv, forwardPorts, keys devbox does not honour) works
# unchanged: the keys devbox ignores are named in one warning line, its commands are [setup]
# (a widening: refused until trusted), `profile show` prints the devbox.ini it amounts to, and
# after `devbox trust` the command ran as root in setup, the variable is set and the port is
# forwarded.  The JSON is protected like devbox.ini.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
P=$(free_port)
mkdir -p .devcontainer
cat >.devcontainer/devcontainer.json <<EOF
// A devcontainer as editors write them: comments and trailing commas.
{
    "name": "devbox test",
    "image": "default", /* the test image, imported as "default" */
    "features": { "ghcr.io/devcontainers/features/node:1": {} },
    "runArgs": ["--privileged"],
    "mounts": ["source=/,target=/host,type=bind"],
    "postCreateCommand": ["sh", "-c", "echo created by \$(id -u) > /etc/created-marker"],
    "containerEnv": { "GREETING": "hello from devcontainer", },
    "forwardPorts": [$P],
}
EOF

# ---- untrusted: refused (the command is a widening); the ignored keys are named ---------------
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "setup runs 'sh -c 'echo created by \$(id -u) > /etc/created-marker'' as root" \
    "refusal of the devcontainer's postCreateCommand"
assert_eq 0 "$(qemu_pids | count_lines)" "qemu processes after the refusal"
run dbx profile show
assert_contains "$OUT" "; translated by devbox from .devcontainer/devcontainer.json" "profile show: the devbox.ini equivalent"
assert_contains "$OUT" "GREETING = hello from devcontainer" "profile show: containerEnv as [env]"
assert_contains "$OUT" "$P = $P" "profile show: forwardPorts as [ports]"
assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c 'not supported by devbox, ignored: features, runArgs, mounts')" \
    "warning lines naming the ignored keys in profile show's stderr: $(show "$ERR")"

ok dbx trust
ok dbx exec -- sh -c 'cat /etc/created-marker; echo "$GREETING"'
assert_eq $'created by 0\nhello from devcontainer' "$OUT" "the setup's marker (written as root) and containerEnv"
assert_contains "$ERR" "devbox: setup [1/1]: " "setup's progress on the first start"
assert_eq 1 "$(printf '%s\n' "$ERR" | grep -c 'ignored: features, runArgs, mounts')" \
    "warning lines naming the ignored keys on the first start: $(show "$ERR")"
ok dbx port ls
assert_contains "$OUT" "127.0.0.1:$P -> $P" "port ls: forwardPorts"

# The JSON is the repo's profile: read-only in the box, as devbox.ini is.
run dbx exec -- sh -c 'echo "{}" > .devcontainer/devcontainer.json'
assert_eq 1 "$RC" "exit code of writing the devcontainer.json in the box: $(show "$ERR")"
grep -q postCreateCommand .devcontainer/devcontainer.json || fail "the box changed devcontainer.json"
