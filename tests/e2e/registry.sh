# shellcheck shell=bash
# tests/e2e/registry.sh: a real registry (Debian's docker-registry, CNCF distribution 2.8) on
# loopback for tests, sourced by t-oci-*.sh and later by the CLI's pull tests.  No VM needed.
#
#   registry_ca DIR                     make a test CA and a server cert for 127.0.0.1/localhost
#                                       in DIR (ca.crt, ca.key, server.crt, server.key)
#   registry_start NAME [--tls CADIR] [--auth USER:PASS]
#                                       start a registry on a free 127.0.0.1 port; sets
#                                       ${NAME}_ADDR (127.0.0.1:PORT), ${NAME}_DIR, ${NAME}_PID,
#                                       ${NAME}_LOG.  --auth needs --tls (htpasswd -B).
#   registry_stop NAME                  stop it (also done by registry_stop_all, at exit)
#   registry_push LAYOUT TAG DEST [--tls CADIR] [--creds USER:PASS]
#                                       skopeo copy --all oci:LAYOUT:TAG docker://DEST
#   registry_digest ADDR/REPO:TAG [CURLOPT...]
#                                       the digest the registry serves for a tag (HEAD request)
#   registry_blob_gets NAME DIGEST      how many GETs of that blob the registry answered 200/206
#   free_port                           a free TCP port on 127.0.0.1
#   docker_config FILE ADDR USER:PASS   write a docker config.json with an "auths" entry
#
# Needs: docker-registry skopeo apache2-utils (htpasswd) openssl curl python3.  Everything
# listens on 127.0.0.1 only.  Processes are killed by registry_stop_all: registry_init adds it to
# lib.sh's CLEANUP_HOOKS when a test runs under lib.sh, else sets it as the EXIT trap.
REGISTRY_NAMES=()

registry_init() {
    local c
    for c in docker-registry skopeo htpasswd openssl curl; do
        command -v "$c" >/dev/null || { type skip >/dev/null 2>&1 && skip "$c not installed"; return 1; }
    done
    if declare -p CLEANUP_HOOKS >/dev/null 2>&1; then
        CLEANUP_HOOKS+=(registry_stop_all) # lib.sh's _cleanup stays the EXIT trap
    else
        trap registry_stop_all EXIT
    fi
}

free_port() {
    "${PYTHON:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

registry_ca() { # DIR
    local d=$1
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=devbox test CA" \
        -keyout "$d/ca.key" -out "$d/ca.crt" >/dev/null 2>&1 || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" \
        -out "$d/server.csr" >/dev/null 2>&1 || return 1
    printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" >/dev/null 2>&1 || return 1
}

registry_start() { # NAME [--tls CADIR] [--auth USER:PASS]
    local name=$1 tls= auth= port dir scheme=http curlopt=()
    shift
    while [ $# -gt 0 ]; do
        case $1 in
        --tls) tls=$2; shift 2 ;;
        --auth) auth=$2; shift 2 ;;
        *) echo "registry_start: unknown option $1" >&2; return 1 ;;
        esac
    done
    port=$(free_port) || return 1
    dir=$(mktemp -d "${TEST_TMP:-/tmp}/reg-$name.XXXXXX") || return 1
    {
        echo "version: 0.1"
        echo "log: {level: info, accesslog: {disabled: false}}"
        echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
        echo "http:"
        echo "  addr: 127.0.0.1:$port"
        echo "  secret: devbox-test"
        if [ -n "$tls" ]; then
            echo "  tls: {certificate: $tls/server.crt, key: $tls/server.key}"
        fi
        if [ -n "$auth" ]; then
            htpasswd -Bbn "${auth%%:*}" "${auth#*:}" >"$dir/htpasswd" 2>/dev/null || return 1
            echo "auth: {htpasswd: {realm: devbox-test, path: $dir/htpasswd}}"
        fi
    } >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    local pid=$!
    if [ -n "$tls" ]; then scheme=https; curlopt=(--cacert "$tls/ca.crt"); fi
    local i
    for ((i = 0; i < 100; i++)); do
        if curl -s -o /dev/null "${curlopt[@]}" "$scheme://127.0.0.1:$port/v2/"; then break; fi
        kill -0 "$pid" 2>/dev/null || { echo "registry $name died: $(tail -n 3 "$dir/log")" >&2; return 1; }
        sleep 0.1
    done
    printf -v "${name}_ADDR" '%s' "127.0.0.1:$port"
    printf -v "${name}_DIR" '%s' "$dir"
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_LOG" '%s' "$dir/log"
    REGISTRY_NAMES+=("$name")
}

registry_stop() { # NAME
    local v="${1}_PID"
    [ -n "${!v:-}" ] || return 0
    kill "${!v}" 2>/dev/null
    wait "${!v}" 2>/dev/null
    printf -v "$v" '%s' ""
}

registry_stop_all() {
    local n
    for n in "${REGISTRY_NAMES[@]}"; do registry_stop "$n"; done
}

registry_push() { # LAYOUT TAG DEST [--tls CADIR] [--creds USER:PASS]
    local layout=$1 tag=$2 dest=$3 opts=(--dest-tls-verify=false)
    shift 3
    while [ $# -gt 0 ]; do
        case $1 in
        --tls)
            mkdir -p "$2/skopeo-certs"
            cp "$2/ca.crt" "$2/skopeo-certs/ca.crt"
            opts=(--dest-cert-dir "$2/skopeo-certs")
            shift 2 ;;
        --creds) opts+=(--dest-creds "$2"); shift 2 ;;
        *) echo "registry_push: unknown option $1" >&2; return 1 ;;
        esac
    done
    skopeo copy -q --all "${opts[@]}" "oci:$layout:$tag" "docker://$dest"
}

registry_digest() { # ADDR/REPO:TAG [CURLOPT...]
    local ref=$1 scheme=http
    shift
    [[ " $* " == *" --cacert "* ]] && scheme=https
    local a="${ref%%/*}" rest="${ref#*/}"
    curl -sfI "$@" -H "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json" \
        "$scheme://$a/v2/${rest%:*}/manifests/${rest##*:}" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}

registry_blob_gets() { # NAME DIGEST
    local v="${1}_LOG"
    grep -E "\"GET /v2/[^ ]*/blobs/$2 HTTP/[0-9.]+\" (200|206) " "${!v}" | wc -l
}

docker_config() { # FILE ADDR USER:PASS
    mkdir -p "$(dirname "$1")"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$2" "$(printf '%s' "$3" | base64 -w0)" >"$1"
}
