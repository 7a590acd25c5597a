# shellcheck shell=bash
# tests/e2e/oci-lib.sh: helpers for the OCI tests (t-oci-*.sh), sourced after lib.sh.  They need
# no VM: they drive the oci/ library through build/tests/oci-tool (built here when missing).
#
#   OCI_TOOL             the driver (tests/tools/oci-tool.c)
#   oci_layout NAME      build mkoci.py preset NAME into $TEST_TMP/layouts/NAME once; prints the
#                        digest index.json points at
#   oci_run OUT ERR ARGS...  run oci-tool with a timeout; stdout/stderr into files; returns rc
#   assert_store_clean STORE  every blob's content hashes to its name; nothing else in blobs/
source "$E2E_DIR/registry.sh"

OCI_TOOL=${OCI_TOOL:-$(dirname "$DEVBOX")/tests/oci-tool}
if [ ! -x "$OCI_TOOL" ]; then
    make -s -C "$REPO_ROOT" "BUILD=$(dirname "$DEVBOX")" "$(dirname "$DEVBOX")/tests/oci-tool" >&2 ||
        fail "cannot build $OCI_TOOL"
fi
MKOCI="$E2E_DIR/mkoci.py"

oci_layout() { # NAME
    local d="$TEST_TMP/layouts/$1"
    if [ ! -f "$d/index.json" ]; then
        mkdir -p "$d"
        "$PYTHON" "$MKOCI" preset "$1" "$d" >"$d.digest" || fail "mkoci.py preset $1 failed"
    fi
    cat "$d.digest"
}

oci_run() { # OUT ERR ARGS...
    local out=$1 err=$2
    shift 2
    timeout 120 "$OCI_TOOL" "$@" >"$out" 2>"$err"
}

assert_store_clean() { # STORE
    local f name alg
    for f in "$1"/blobs/sha256/* "$1"/blobs/sha512/*; do
        [ -e "$f" ] || continue
        name=${f##*/}
        alg=${f%/*}
        alg=${alg##*/}
        [ "$("${alg}sum" "$f" | cut -d' ' -f1)" = "$name" ] ||
            fail "store blob $alg:$name does not match its content"
    done
}

# The JSON field of oci-tool's image output: json_file FILE EXPR (python expression on `j`).
json_file() {
    "$PYTHON" -c 'import json,sys; t=open(sys.argv[1]).read(); j=json.loads(t[t.index("{"):]); print(eval(sys.argv[2]))' "$1" "$2"
}
