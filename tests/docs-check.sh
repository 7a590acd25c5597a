#!/usr/bin/env bash
# tests/docs-check.sh [DEVBOX]: check the recipes of docs/agents.md against this build.
#   <!-- check: config.ini -->           the ini block below goes into a test config.ini
#   <!-- check: devbox.ini [secrets] --> the ini block is a devbox.ini: `devbox trust` then
#                                        `devbox profile check` in a temporary repository must
#                                        succeed (with every config.ini block above loaded);
#                                        "secrets": it uses config.ini secrets; when this build
#                                        does not parse them, the block is checked without its
#                                        [secrets] section (and said so)
#   <!-- check: json NAME -->            the json block parses, and NAME's own checks hold
# and every `devbox ...` line of an sh block names a command of `devbox --help` and only flags
# that command's usage (or `devbox exec --help`) lists.  No VM is started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVBOX=$(realpath -- "${1:-$ROOT/build/devbox}") # the checks run it from other directories
DOC=$ROOT/docs/agents.md
[ -x "$DEVBOX" ] || { echo "docs-check: no devbox at $DEVBOX" >&2; exit 1; }
tmp=$(mktemp -d /tmp/devbox-docs-check.XXXXXX)
trap 'rm -rf --one-file-system -- "$tmp"' EXIT
export DEVBOX_HOME=$tmp/h
mkdir -p "$DEVBOX_HOME/config"
# the environment variables the secrets read exist (values never leave this process tree)
export ANTHROPIC_API_KEY=test OPENAI_API_KEY=test GEMINI_API_KEY=test

# Split the doc into blocks: $tmp/blocks/N.{kind,body} for each fenced block after a marker,
# $tmp/sh/N for each sh block.
python3 - "$DOC" "$tmp" <<'PY'
import os, re, sys
doc, tmp = sys.argv[1], sys.argv[2]
os.makedirs(f"{tmp}/blocks"); os.makedirs(f"{tmp}/sh")
lines = open(doc).read().split("\n")
marker, n, i = None, 0, 0
while i < len(lines):
    l = lines[i]
    m = re.match(r"<!-- check: (.*) -->$", l)
    if m:
        marker = m.group(1).strip()
    elif l.startswith("```"):
        lang, body, i = l[3:].strip(), [], i + 1
        start = i + 1
        while not lines[i].startswith("```"):
            body.append(lines[i]); i += 1
        n += 1
        if marker:
            open(f"{tmp}/blocks/{n:03}.kind", "w").write(f"{marker}\n{doc}:{start}\n")
            open(f"{tmp}/blocks/{n:03}.body", "w").write("\n".join(body) + "\n")
        elif lang == "sh":
            open(f"{tmp}/sh/{n:03}", "w").write(f"{doc}:{start}\n" + "\n".join(body) + "\n")
        elif lang in ("ini", "json"):
            sys.exit(f"{doc}:{start}: {lang} block without a <!-- check: ... --> marker")
        marker = None
    i += 1
PY

fails=0
bad() { echo "docs-check: $*" >&2; fails=$((fails + 1)); }

# config.ini: every block, in order
for k in "$tmp"/blocks/*.kind; do
    read -r kind <"$k"
    [ "$kind" = config.ini ] && cat "${k%.kind}.body" >>"$DEVBOX_HOME/config/config.ini"
done
# does this build parse config.ini secrets?  (helper branch i11-profiles adds them)
secrets=yes
mkdir -p "$tmp/probe" && git -C "$tmp/probe" init -q
if ! (cd "$tmp/probe" && "$DEVBOX" profile check) >"$tmp/probe.out" 2>&1 &&
    grep -q "unknown section '\[secret " "$tmp/probe.out"; then
    secrets=no
    echo "docs-check: this devbox does not parse config.ini [secret NAME] yet: the secrets" \
        "in the config.ini blocks and the [secrets] sections are not checked" >&2
    grep -v '^\[secret \|^env = \|^hosts = \|^header = ' "$DEVBOX_HOME/config/config.ini" \
        >"$tmp/config.nosecrets" || true
    cp "$tmp/config.nosecrets" "$DEVBOX_HOME/config/config.ini"
fi

for k in "$tmp"/blocks/*.kind; do
    { read -r kind; read -r where; } <"$k"
    body=${k%.kind}.body
    case $kind in
    config.ini) ;;
    devbox.ini*)
        r=$tmp/repo-${k##*/}
        mkdir -p "$r" && git -C "$r" init -q && cp "$body" "$r/devbox.ini"
        if [[ $kind == *secrets* && $secrets == no ]]; then
            echo "docs-check: $where: checked without its [secrets] section" >&2
            awk '/^\[/ { skip = ($0 == "[secrets]") } !skip' "$body" >"$r/devbox.ini"
        fi
        if ! (cd "$r" && "$DEVBOX" trust >/dev/null 2>"$tmp/err" && "$DEVBOX" profile check \
            >/dev/null 2>>"$tmp/err"); then
            bad "$where: devbox.ini block fails 'devbox profile check': $(cat "$tmp/err")"
        fi
        ;;
    json\ *)
        python3 - "$body" "${kind#json }" <<'PY' || bad "$where: json block ($kind) fails its check"
import json, sys
v = json.load(open(sys.argv[1]))
name = sys.argv[2]
if name == "vscode-settings":
    prof = v["terminal.integrated.profiles.linux"][v["terminal.integrated.defaultProfile.linux"]]
    assert prof["path"] == "devbox" and prof["args"] == ["enter"], prof
elif name == "vscode-tasks":
    assert v["version"] == "2.0.0"
    for t in v["tasks"]:
        assert t["command"] == "devbox" and t["args"][0] == "exec", t
        a = t["args"][1:]
        assert a[:1] == ["--"] or (a[0] == "--shell" and len(a) == 2), t
else:
    sys.exit(f"unknown json check {name}")
PY
        ;;
    *) bad "$where: unknown check '$kind'" ;;
    esac
done

# every devbox command line: a real command, real flags
"$DEVBOX" --help >"$tmp/usage"
"$DEVBOX" exec --help >>"$tmp/usage"
python3 - "$tmp" <<'PY' || fails=$((fails + 1))
import glob, re, shlex, sys
tmp = sys.argv[1]
usage = open(f"{tmp}/usage").read()
takes_arg = {"-e", "-w", "-u", "--env", "--workdir", "--user", "--platform", "--shell"}
bad = 0
def has_flag(f):
    return re.search(re.escape(f) + r"(?![\w-])", usage) is not None
for path in sorted(glob.glob(f"{tmp}/sh/*")):
    where, *lines = open(path).read().split("\n")
    for line in lines:
        try:
            w = shlex.split(line, comments=True)
        except ValueError as e:
            print(f"docs-check: {where}: cannot split {line!r}: {e}", file=sys.stderr); bad += 1
            continue
        if len(w) < 2 or w[0] != "devbox":
            continue
        if not re.search(r"^  devbox " + re.escape(w[1]) + r"\b", usage, re.M):
            print(f"docs-check: {where}: 'devbox {w[1]}' is not a devbox command", file=sys.stderr)
            bad += 1
        optarg = False
        for a in w[2:]:  # options end at --, after --shell's string, at the first operand
            if a == "--":
                break
            if optarg:
                optarg = False
                continue
            if not a.startswith("-"):
                break
            flags = ["-" + c for c in a[1:]] if re.fullmatch(r"-[a-zA-Z]{2,}", a) else [a.split("=")[0]]
            for f in flags:
                if not has_flag(f):
                    print(f"docs-check: {where}: no flag {f} in {line!r}", file=sys.stderr)
                    bad += 1
            optarg = a in takes_arg
sys.exit(1 if bad else 0)
PY

[ "$fails" = 0 ] || { echo "docs-check: $fails problem(s)" >&2; exit 1; }
echo "docs-check: docs/agents.md ok (secrets checked: $secrets)"
