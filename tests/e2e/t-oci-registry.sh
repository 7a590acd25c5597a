#!/usr/bin/env bash
# tests/e2e/t-oci-registry.sh: pull from a real registry (Debian's docker-registry on loopback,
# plain http and TLS with a test CA and htpasswd basic auth) with the oci/ library: by tag and by
# digest, platform selection from an index, credentials from a docker config.json in a temp
# HOME, concurrent pulls that fetch each blob once, inspect, gc, and archive import (docker save
# via skopeo, OCI layout as directory and tar).  Prints pull time vs `skopeo copy`.  No VM.
source "$(dirname "$0")/lib.sh"
source "$E2E_DIR/oci-lib.sh"
registry_init || exit 1

oci_layout multilayer >/dev/null
oci_layout multiplatform >/dev/null
L=$TEST_TMP/layouts
CA=$TEST_TMP/ca
registry_ca "$CA" || fail "openssl: cannot make the test CA"
registry_start PLAIN || fail "cannot start the plain registry"
registry_start SECURE --tls "$CA" --auth devbox:s3cret || fail "cannot start the TLS registry"
registry_push "$L/multilayer" latest "$PLAIN_ADDR/test/multi:v1" || fail "skopeo push multi"
registry_push "$L/multiplatform" latest "$PLAIN_ADDR/test/mp:latest" || fail "skopeo push mp"
registry_push "$L/multilayer" latest "$SECURE_ADDR/test/multi:v1" --tls "$CA" --creds devbox:s3cret ||
    fail "skopeo push to the TLS registry"
# skopeo re-serializes manifests: the digests are what the registry serves, not mkoci's
multi=$(registry_digest "$PLAIN_ADDR/test/multi:v1")
mp=$(registry_digest "$PLAIN_ADDR/test/mp:latest")
assert_match "$multi" '^sha256:[0-9a-f]{64}$' "registry digest of test/multi:v1"
S=$TEST_TMP/store
O=$TEST_TMP/out
E=$TEST_TMP/err

log "pull by tag (plain http, loopback)"
oci_run "$O" "$E" pull "$S" "$PLAIN_ADDR/test/multi:v1" || fail "pull by tag: $(cat "$E")"
assert_eq "resolved $multi" "$(grep ^resolved "$O")" "resolved line"
assert_eq "0 1 2 3" "$(grep ^ready "$O" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')" "layer_ready order"
assert_eq "$multi" "$(json_file "$O" 'j["manifest_digest"]')" "manifest digest"
assert_eq "4" "$(json_file "$O" 'len(j["layers"])')" "layer count"
assert_eq "/data" "$(json_file "$O" 'j["config"]["workdir"]')" "workdir"
for d in $(grep ^ready "$O" | cut -d' ' -f3); do assert_file "$S/blobs/sha256/${d#sha256:}"; done
assert_store_clean "$S"

log "pull by digest, and inspect"
oci_run "$O" "$E" pull "$S" "$PLAIN_ADDR/test/multi@$multi" || fail "pull by digest: $(cat "$E")"
assert_eq "$multi" "$(json_file "$O" 'j["manifest_digest"]')" "manifest digest by digest"
oci_run "$O" "$E" inspect "$S" "$multi" || fail "inspect: $(cat "$E")"
assert_eq "linux/amd64" "$(json_file "$O" 'j["platform"]')" "inspect platform"
bad=sha256:$(printf '0%.0s' {1..64})
oci_run "$O" "$E" pull "$S" "$PLAIN_ADDR/test/multi@$bad"
assert_ne 0 $? "pull of an unknown digest"
assert_one_line "$(cat "$E")" "unknown digest error"

log "platform selection from an index"
oci_run "$O" "$E" pull "$S" "$PLAIN_ADDR/test/mp" || fail "pull mp: $(cat "$E")"
assert_eq "linux/amd64" "$(json_file "$O" 'j["platform"]')" "default (host) platform"
assert_eq "$mp" "$(json_file "$O" 'j["index_digest"]')" "index digest"
for p in linux/arm64 linux/arm64/v8 linux/arm/v7 linux/s390x; do
    oci_run "$O" "$E" pull "$S" "$PLAIN_ADDR/test/mp" --platform "$p" || fail "pull --platform $p: $(cat "$E")"
    want=${p%/v8}
    assert_eq "$want" "$(json_file "$O" 'j["platform"]')" "platform $p"
done
oci_run "$O" "$E" pull "$S" "$PLAIN_ADDR/test/mp" --platform linux/riscv64
assert_ne 0 $? "pull of a platform the index lacks"
assert_one_line "$(cat "$E")"
assert_contains "$(cat "$E")" "no image for platform linux/riscv64 in the index (it has: linux/amd64, linux/arm64"

log "TLS + basic auth, credentials from ~/.docker/config.json in a temp HOME"
H=$TEST_TMP/home
docker_config "$H/.docker/config.json" "$SECURE_ADDR" devbox:s3cret
S2=$TEST_TMP/store2
HOME=$H oci_run "$O" "$E" pull "$S2" "$SECURE_ADDR/test/multi:v1" --ca-file "$CA/ca.crt" ||
    fail "TLS pull with credentials: $(cat "$E")"
assert_eq "$multi" "$(json_file "$O" 'j["manifest_digest"]')" "TLS manifest digest"
HOME=$TEST_TMP/nohome oci_run "$O" "$E" pull "$TEST_TMP/store3" "$SECURE_ADDR/test/multi:v1" --ca-file "$CA/ca.crt"
assert_ne 0 $? "TLS pull without credentials"
assert_one_line "$(cat "$E")"
assert_contains "$(cat "$E")" "wants credentials"
docker_config "$TEST_TMP/wrong/config.json" "$SECURE_ADDR" devbox:wrong
oci_run "$O" "$E" pull "$TEST_TMP/store3" "$SECURE_ADDR/test/multi:v1" --ca-file "$CA/ca.crt" \
    --docker-config "$TEST_TMP/wrong/config.json"
assert_ne 0 $? "TLS pull with wrong credentials"
assert_contains "$(cat "$E")" "HTTP 401"
HOME=$H oci_run "$O" "$E" pull "$TEST_TMP/store3" "$SECURE_ADDR/test/multi:v1"
assert_ne 0 $? "TLS pull without the test CA"
assert_one_line "$(cat "$E")"
assert_contains "$(cat "$E")" "certificate"

log "concurrent pulls of the same image fetch each blob once"
registry_push "$L/multilayer" latest "$PLAIN_ADDR/test/conc:v1" || fail "push conc"
declare -A before
oci_run "$O" "$E" inspect "$S" "$multi" || fail "inspect: $(cat "$E")"
layers=$(json_file "$O" '" ".join(l["digest"] for l in j["layers"])')
for d in $layers; do before[$d]=$(registry_blob_gets PLAIN "$d"); done
S4=$TEST_TMP/store4
pids=()
for i in 1 2 3; do
    oci_run "$TEST_TMP/c$i.out" "$TEST_TMP/c$i.err" pull "$S4" "$PLAIN_ADDR/test/conc:v1" --quiet &
    pids+=($!)
done
for i in 0 1 2; do wait "${pids[$i]}" || fail "concurrent pull $i: $(cat "$TEST_TMP/c$((i + 1)).err")"; done
for d in $layers; do
    n=$(($(registry_blob_gets PLAIN "$d") - before[$d]))
    assert_eq 1 "$n" "GETs of $d by 3 concurrent pulls"
done
assert_store_clean "$S4"

log "gc"
oci_run "$O" "$E" gc "$S" "$multi" || fail "gc: $(cat "$E")"
assert_match "$(cat "$O")" '^freed [1-9][0-9]*$' "gc freed something (the mp images)"
oci_run "$O" "$E" inspect "$S" "$multi" || fail "inspect after gc: $(cat "$E")"
for d in $layers; do assert_file "$S/blobs/sha256/${d#sha256:}"; done
oci_run "$O" "$E" gc "$S" || fail "gc all: $(cat "$E")"
assert_eq 0 "$(find "$S/blobs" -type f | wc -l)" "blobs left after gc of everything"
oci_run "$O" "$E" gc "$S" "$multi"
assert_ne 0 $? "gc keeping a missing manifest"

log "archive import: docker save, OCI layout directory and tar, rootfs"
oci_layout busybox >/dev/null
# docker-archive has no zstd layers: save the busybox image
skopeo copy -q "oci:$L/busybox:latest" "docker-archive:$TEST_TMP/save.tar:test/multi:v1" ||
    fail "skopeo docker-archive"
assert_eq docker "$("$OCI_TOOL" detect "$TEST_TMP/save.tar")" "detect docker save"
oci_run "$O" "$E" import "$S" "$TEST_TMP/save.tar" || fail "import docker save: $(cat "$E")"
assert_eq 1 "$(json_file "$O" 'len(j["layers"])')" "docker save layers"
assert_eq "/bin/sh" "$(json_file "$O" 'j["config"]["cmd"][0]')" "docker save cmd"
oci_run "$O" "$E" import "$S" "$TEST_TMP/save.tar" --name test/multi:v1 || fail "import --name: $(cat "$E")"
oci_run "$O" "$E" import "$S" "$TEST_TMP/save.tar" --name nope:v1
assert_ne 0 $? "import of a name the archive lacks"
assert_eq layout "$("$OCI_TOOL" detect "$L/multiplatform")" "detect layout dir"
oci_run "$O" "$E" import "$S" "$L/multiplatform" --platform linux/arm64 || fail "import layout dir: $(cat "$E")"
assert_eq "linux/arm64" "$(json_file "$O" 'j["platform"]')" "layout dir platform"
assert_eq "$(oci_layout multiplatform)" "$(json_file "$O" 'j["index_digest"]')" "layout dir index digest"
tar -C "$L/multilayer" -cf "$TEST_TMP/layout.tar" . || fail "tar layout"
assert_eq layout "$("$OCI_TOOL" detect "$TEST_TMP/layout.tar")" "detect layout tar"
oci_run "$O" "$E" import "$S" "$TEST_TMP/layout.tar" || fail "import layout tar: $(cat "$E")"
assert_eq "$(oci_layout multilayer)" "$(json_file "$O" 'j["manifest_digest"]')" "layout tar manifest digest"
assert_eq rootfs "$("$OCI_TOOL" detect "$DBX_TEST_IMAGE")" "detect rootfs tarball"
oci_run "$O" "$E" import "$S" "$DBX_TEST_IMAGE"
assert_ne 0 $? "import of a rootfs tarball"
assert_store_clean "$S"

log "figures: pull vs skopeo copy of the same image (loopback registry)"
S5=$TEST_TMP/store5
t0=$(date +%s%N)
oci_run "$O" "$E" pull "$S5" "$PLAIN_ADDR/test/multi:v1" --quiet || fail "timed pull"
t1=$(date +%s%N)
skopeo copy -q --src-tls-verify=false "docker://$PLAIN_ADDR/test/multi:v1" "oci:$TEST_TMP/sk:v1" ||
    fail "skopeo copy"
t2=$(date +%s%N)
log "FIGURE pull of a 4-layer image: oci_pull $(((t1 - t0) / 1000000)) ms, skopeo copy $(((t2 - t1) / 1000000)) ms"
exit 0
