#!/usr/bin/env bash
# t-image: import errors are one line and non-zero; an imported image keeps owners, modes and
# the setuid bit from the tar headers; a missing image named in devbox.ini is a clean error.
. "$(dirname "$0")/lib.sh"

run dbx image import "$TEST_TMP/missing.tar" default
[ "$RC" != 0 ] || fail "import of a missing file succeeded"
assert_one_line "$ERR" "stderr of import of a missing file"
assert_match "$ERR" '^devbox: ' "stderr of import of a missing file"

head -c 3000 /dev/urandom >"$TEST_TMP/garbage.tar"
run dbx image import "$TEST_TMP/garbage.tar" garbage
[ "$RC" != 0 ] || fail "import of a random file succeeded"
assert_one_line "$ERR" "stderr of import of a random file"

# a tarball with an entry escaping the root is refused
"$PYTHON" - "$TEST_TMP/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    for name in ["bin", "../escape"]:
        ti = tarfile.TarInfo(name)
        if name == "bin":
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            t.addfile(ti)
        else:
            ti.size = 3
            t.addfile(ti, io.BytesIO(b"bad"))
PY
run dbx image import "$TEST_TMP/evil.tar" evil
[ "$RC" != 0 ] || fail "import of a tarball with '../escape' succeeded"
assert_one_line "$ERR" "stderr of import of a tarball with '..'"
[ ! -e "$DEVBOX_HOME/../escape" ] && [ ! -e "$TEST_TMP/escape" ] || fail "'../escape' was written"

import_image default
R=$(make_repo proj)
cd "$R" || fail "cd $R"

ok dbx exec -- stat -c '%n %a %u %g' /usr/bin/suidtest /tmp /home/dev /root /bin/busybox /etc/passwd
assert_eq "/usr/bin/suidtest 4755 0 0
/tmp 1777 0 0
/home/dev 755 1000 1000
/root 700 0 0
/bin/busybox 755 0 0
/etc/passwd 644 0 0" "$OUT" "owners and modes in the guest"
ok dbx exec -- readlink /bin/sh
assert_eq busybox "$OUT" "symlink /bin/sh"

# devbox.ini naming an image that is neither local nor pullable (a registry on a closed loopback
# port, so the test sends nothing beyond this machine): the first-use phase line, then one error
R2=$(make_repo proj2)
printf '[box]\nimage = 127.0.0.1:1/nosuchimage\n' >"$R2/devbox.ini"
run_in "$R2" dbx exec -- true
assert_eq 125 "$RC" "exit code with image = 127.0.0.1:1/nosuchimage"
assert_eq 2 "$(printf '%s\n' "$ERR" | wc -l)" "stderr lines with image = 127.0.0.1:1/nosuchimage: $(show "$ERR")"
assert_eq "devbox: pulling 127.0.0.1:1/nosuchimage" "$(printf '%s\n' "$ERR" | head -n 1)" "phase line"
assert_contains "$(printf '%s\n' "$ERR" | tail -n 1)" "nosuchimage" "error line with image = 127.0.0.1:1/nosuchimage"

# a malformed devbox.ini is a clean error too
R3=$(make_repo proj3)
printf '[box]\nmemory = lots\n' >"$R3/devbox.ini"
run_in "$R3" dbx exec -- true
assert_eq 125 "$RC" "exit code with memory = lots"
assert_one_line "$ERR" "stderr with memory = lots"
