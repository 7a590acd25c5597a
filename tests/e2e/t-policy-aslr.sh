#!/usr/bin/env bash
# t-policy-aslr: under TCG the box's programs start at fixed addresses ([security] aslr = auto),
# so a dynamically linked program finds its libraries where TCG already translated them; under
# KVM, and with aslr = on, they are randomized.  The effect, not only the flag: the host's bash
# and its libraries (a dynamically linked program) report where libc and the stack are mapped,
# in two separate commands, and the two must agree (fixed) or differ (randomized).
. "$(dirname "$0")/lib.sh"

R=$(make_repo proj)
cd "$R" || fail "cd $R"
import_bash_image default

# personality, libc's first mapping, the stack: read by bash itself from its own maps ($OUT)
layout() {
    ok dbx exec -- /bin/bash -c 'read -r p </proc/self/personality; echo "$p"
        while read -r l; do case $l in *libc*) echo "libc ${l%%-*}"; break ;; esac; done </proc/self/maps
        while read -r l; do case $l in *"[stack]"*) echo "stack ${l%%-*}"; break ;; esac; done </proc/self/maps'
}

ok dbx exec -- true
run dbx status --json
accel=$(json_get "$OUT" 'j["accel"]')
aslr=$(json_get "$OUT" 'j["aslr"]')
layout
a=$OUT
layout
b=$OUT
assert_match "$a" $'^[0-9a-f]{8}\nlibc [0-9a-f]+\nstack [0-9a-f]+$' "the layout's report"
# status says which, and under TCG the key that changes it
ok dbx status
if [ "$accel" = tcg ]; then
    assert_eq false "$aslr" "status --json aslr under TCG"
    assert_contains "$OUT" "aslr        off: programs start at fixed addresses under tcg ('[security] aslr = on' randomizes them)" "status under TCG"
    assert_eq 00040000 "$(head -n 1 <<<"$a")" "personality under TCG (ADDR_NO_RANDOMIZE)"
    assert_eq "$a" "$b" "libc and the stack of two commands under TCG"
    # what a command starts inherits it, as do the commands of a shell
    ok dbx exec -- sh -c 'cat /proc/self/personality; sh -c "cat /proc/self/personality"'
    assert_eq $'00040000\n00040000' "$OUT" "personality of a command's children"
else
    assert_eq true "$aslr" "status --json aslr under $accel"
    assert_match "$OUT" $'\naslr +on\n' "status under $accel"
    assert_eq 00000000 "$(head -n 1 <<<"$a")" "personality under $accel"
    assert_ne "$a" "$b" "libc and the stack of two commands under $accel"
fi

# aslr = on narrows: no trust needed, randomized under any accelerator
write_profile "$R" $'[security]\naslr = on'
restart
ok dbx profile show
assert_match "$OUT" $'\naslr = on +; devbox.ini:2' "profile show"
layout
a=$OUT
layout
b=$OUT
assert_eq 00000000 "$(head -n 1 <<<"$a")" "personality with aslr = on"
assert_ne "$(sed -n 2p <<<"$a")" "$(sed -n 2p <<<"$b")" "libc of two commands with aslr = on"
assert_ne "$(sed -n 3p <<<"$a")" "$(sed -n 3p <<<"$b")" "the stack of two commands with aslr = on"
ok dbx status --json
assert_eq true "$(json_get "$OUT" 'j["aslr"]')" "status --json aslr with aslr = on"
ok dbx status
assert_match "$OUT" $'\naslr +on\n' "status with aslr = on"

# a value it does not know is refused at the box's start, naming the line
write_profile "$R" $'[security]\naslr = off'
restart
expect_rc 125 dbx exec -- true
assert_contains "$ERR" "devbox.ini:2: [security] aslr: must be 'auto' or 'on', not 'off'" "bad aslr value"
