#!/usr/bin/env bash
# t-init-skew: a guest init from another build (another protocol version) fails the start at
# with one line that says so (before, it waited out the hello deadline twice and blamed the
# boot); the next start with the right init works.
. "$(dirname "$0")/lib.sh"

old_init=$(dirname "$DEVBOX")/tests/devbox-init-v1
[ -x "$old_init" ] || old_init=$E2E_DIR/../../build/tests/devbox-init-v1
[ -x "$old_init" ] || fail "no build/tests/devbox-init-v1 (make build/tests/devbox-init-v1)"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"

DEVBOX_INIT=$old_init run dbx exec -- true
assert_eq 125 "$RC" "exit code with a guest init of another protocol version"
assert_one_line "$ERR" "stderr with a guest init of another protocol version"
assert_contains "$ERR" "protocol version 1" "stderr names the init's version"
assert_contains "$ERR" "devbox-init comes from another build" "stderr says what is wrong"
assert_no_vm_procs

ok dbx exec -- true
