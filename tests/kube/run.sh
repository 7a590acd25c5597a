#!/bin/sh
# Validates the Kubernetes manifests `devbox export kubernetes` produces, offline, against the real
# schemas (validate.mjs says how): every *.yaml and *.json under tests/golden/kubernetes/ (the
# export's golden outputs), or while that directory does not exist the hand-written
# tests/kube/samples/*.yaml and *.json.  Then every negative sample under tests/kube/samples/bad/
# must FAIL, with the message its first line (`# expect: ...`, or FILE.expect beside a JSON file)
# names: proof that the validators are live.  `make check-kube` runs this (part of `make unit`);
# `make deps` installs what it needs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

command -v node >/dev/null 2>&1 || { echo "kube: node is not installed: run make deps" >&2; exit 1; }
[ -d "$here/node_modules/kubernetes-models" ] && [ -d "$here/node_modules/@kubernetes-models/crd-generate" ] || {
  echo "kube: $here/node_modules is missing: run make deps (npm ci --prefix tests/kube)" >&2
  exit 1
}

# The CRD validators, generated from crds/ when missing or older than a CRD file.
stamp=$here/gen/.stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$here/crds" -name '*.yaml' -newer "$stamp")" ] ||
  [ "$(cd "$here/crds" && ls ./*.yaml | sed 's|^\./||')" != "$(cat "$stamp")" ]; then
  node "$here/generate.mjs"
fi

golden=$root/tests/golden/kubernetes
if [ -d "$golden" ]; then
  files=$(find "$golden" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort)
  [ -n "$files" ] || { echo "kube: no *.yaml or *.json under $golden" >&2; exit 1; }
else
  echo "kube: no $golden yet: validating the samples"
  files=$(find "$here/samples" -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.json' \) | sort)
fi
# shellcheck disable=SC2086 # one path per word: the paths have no blanks
node "$here/validate.mjs" $files

# The negative samples: each must fail, and for the reason it names.
set -- "$here"/samples/bad/*.yaml "$here"/samples/bad/*.json
[ -f "$1" ] || { echo "kube: no negative sample in $here/samples/bad" >&2; exit 1; }
node "$here/validate.mjs" --negative "$@"
