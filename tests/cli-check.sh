#!/usr/bin/env bash
# tests/cli-check.sh [DEVBOX]: every command and flag of `devbox --help` (and `devbox exec
# --help`) appears in `devbox completion bash`, in `devbox completion zsh` and in docs/devbox.1;
# both scripts parse; the bash one completes commands and a command's flags.  No VM.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVBOX=$(realpath -- "${1:-$ROOT/build/devbox}") # the checks run it from other directories
MAN=$ROOT/docs/devbox.1
tmp=$(mktemp -d /tmp/devbox-cli-check.XXXXXX)
trap 'rm -rf --one-file-system -- "$tmp"' EXIT
fails=0
bad() { echo "cli-check: $*" >&2; fails=$((fails + 1)); }

"$DEVBOX" --help >"$tmp/usage"
"$DEVBOX" exec --help >"$tmp/exec-usage"
"$DEVBOX" completion bash >"$tmp/bash"
"$DEVBOX" completion zsh >"$tmp/zsh"
bash -n "$tmp/bash" || bad "the bash completion script does not parse"
if command -v zsh >/dev/null; then zsh -n "$tmp/zsh" || bad "the zsh completion script does not parse"; fi
if "$DEVBOX" completion fish >/dev/null 2>&1; then bad "completion accepts an unknown shell"; fi
# the man page with roff escapes undone: \- is -, \fB..\fR are fonts
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' "$MAN" >"$tmp/man"

commands=$(sed -n 's/^  devbox \([a-z][a-z-]*\).*/\1/p' "$tmp/usage" | sort -u)
[ -n "$commands" ] || bad "no commands in devbox --help"
for c in $commands; do
    grep -qw -- "$c" <(sed -n '/^    case \$cmd in/,/^    esac/p;/words="/p' "$tmp/bash") ||
        bad "command '$c' missing from the bash completion"
    grep -q "'$c:" "$tmp/zsh" || bad "command '$c' missing from the zsh completion"
    grep -qE "^\.(B|BR|TP)? ?\"?$c\b|^$c\b|^\.BR \"?$c" "$tmp/man" || grep -q "^$c\b" "$tmp/man" ||
        bad "command '$c' missing from docs/devbox.1"
    # the flags of this command's usage line(s)
    flags=$(grep "^  devbox $c\b" "$tmp/usage" | grep -oE -- '(^| |\[|\|)--?[a-zA-Z][a-zA-Z-]*' |
        sed 's/^[ [|]*//' | sort -u || true)
    # exec --help: its usage lines and the options it explains
    [ "$c" = exec ] && flags+=" $({ grep -E '^(usage:|       devbox)' "$tmp/exec-usage" |
        grep -oE -- '(^| |\[)--?[a-zA-Z][a-zA-Z-]*'; grep -oE -- '^  --?[a-zA-Z][a-zA-Z-]*' \
        "$tmp/exec-usage"; } | sed 's/^[ [|]*//' | sort -u)"
    for f in $flags; do
        grep -qE -- "^    $c\) words=\"([^\"]* )?$f( [^\"]*)?\"" "$tmp/bash" ||
            bad "flag '$f' of '$c' missing from the bash completion"
        grep -qE -- "^    $c\)( compadd -- ([^;]* )?$f( |;|\$)|\$)" "$tmp/zsh" ||
            grep -qE -- "compadd -- ([^;]* )?$f( |;|\$)" <(sed -n "/^    $c)\$/,/;;/p" "$tmp/zsh") ||
            bad "flag '$f' of '$c' missing from the zsh completion"
        grep -qE -- "(^|[^a-zA-Z-])$f([^a-zA-Z-]|\$)" "$tmp/man" || bad "flag '$f' of '$c' missing from docs/devbox.1"
    done
done
# and every word the completion offers (the table's full flag and subcommand lists) is in the man
# page: the usage lines abbreviate some (logs [--network|--setup|...])
while read -r c words; do
    for f in $words; do
        grep -qE -- "(^|[^a-zA-Z-])$f([^a-zA-Z-]|\$)" "$tmp/man" ||
            bad "'$f' of '$c' (completion) missing from docs/devbox.1"
    done
done < <(sed -n 's/^    \([a-z]*\)) words="\([^"]*\)" ;;$/\1 \2/p' "$tmp/bash")
for f in -C --network --help; do
    grep -q -- "$f" "$tmp/man" || bad "global option '$f' missing from docs/devbox.1"
done

# the bash script completes: commands, then a command's flags
complete_bash() { # WORD...: print COMPREPLY for the last word
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _devbox; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$tmp/bash" "$@"
}
[ "$(complete_bash devbox exe)" = exec ] || bad "bash completion of 'devbox exe': $(complete_bash devbox exe)"
[ "$(complete_bash devbox -C /tmp statu)" = status ] || bad "bash completion after -C DIR"
[ "$(complete_bash devbox status --j)" = --json ] || bad "bash completion of 'devbox status --j'"
complete_bash devbox exec --sh | grep -qx -- --shell || bad "bash completion of 'devbox exec --sh'"
complete_bash devbox completion z | grep -x zsh >/dev/null || bad "bash completion of 'devbox completion z'"
complete_bash devbox exec -e A=1 -- bas | grep -x bash >/dev/null || bad "bash completion of a command name after exec"
mkdir -p "$tmp/cwd" && touch "$tmp/cwd/afile"
(cd "$tmp/cwd" && complete_bash devbox exec -- cat af) | grep -x afile >/dev/null ||
    bad "bash completion of a file after exec's command"

# `devbox export kubernetes` without a VM (docs/kubernetes.md): a repository with an origin,
# -o DIR and stdout, an untrusted widening profile refused, bad options one line and 125
export_check() {
    local repo=$tmp/exp/demo out
    export DEVBOX_HOME=$tmp/exp/home
    mkdir -p "$repo" && git -C "$repo" init -q &&
        git -C "$repo" remote add origin https://user:secret@git.example/demo.git &&
        git -C "$repo" -c user.name=t -c user.email=t@t commit -q --allow-empty -m init || {
        bad "export: cannot make a git repository"
        return
    }
    "$DEVBOX" -C "$repo" export kubernetes -o "$tmp/exp/out" 2>"$tmp/exp/err" ||
        bad "export -o failed: $(cat "$tmp/exp/err")"
    [ -s "$tmp/exp/out/demo.yaml" ] && [ -s "$tmp/exp/out/seccomp-default.json" ] ||
        bad "export -o did not write demo.yaml and seccomp-default.json"
    grep -q '^kind: "SandboxTemplate"' "$tmp/exp/out/demo.yaml" || bad "export: no SandboxTemplate"
    grep -q 'secret' "$tmp/exp/out/demo.yaml" && bad "export: the origin's credentials reached the YAML"
    [ "$(wc -l <"$tmp/exp/err")" = 1 ] && grep -q '^devbox: warning: [0-9]* settings do not carry over' \
        "$tmp/exp/err" || bad "export: not one warning line: $(cat "$tmp/exp/err")"
    out=$("$DEVBOX" -C "$repo" export kubernetes --format pod --namespace ns 2>/dev/null) ||
        bad "export to stdout failed"
    grep -q '^kind: "Pod"' <<<"$out" && grep -q '^kind: "ConfigMap"' <<<"$out" ||
        bad "export to stdout: no Pod or no ConfigMap"
    if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
        python3 -c 'import sys, yaml; list(yaml.safe_load_all(sys.stdin))' <<<"$out" ||
            bad "export to stdout: not YAML"
    fi
    printf '[network]\nmode = open\n' >"$repo/devbox.ini"
    if "$DEVBOX" -C "$repo" export kubernetes >/dev/null 2>"$tmp/exp/err"; then
        bad "export accepted an untrusted widening profile"
    fi
    grep -q "network mode 'open'" "$tmp/exp/err" || bad "export: refusal does not name the widening: $(cat "$tmp/exp/err")"
    rm -f "$repo/devbox.ini"
    local rc=0
    "$DEVBOX" -C "$repo" export kubernetes --format yaml >/dev/null 2>"$tmp/exp/err" || rc=$?
    [ "$rc" = 125 ] && [ "$(wc -l <"$tmp/exp/err")" = 1 ] || bad "export --format yaml: exit $rc, $(cat "$tmp/exp/err")"
    rc=0
    "$DEVBOX" -C "$repo" export helm >/dev/null 2>"$tmp/exp/err" || rc=$?
    [ "$rc" = 125 ] && [ "$(wc -l <"$tmp/exp/err")" = 1 ] || bad "export helm: exit $rc, $(cat "$tmp/exp/err")"
    unset DEVBOX_HOME
}
if command -v git >/dev/null; then export_check; fi

[ "$fails" = 0 ] || { echo "cli-check: $fails problem(s)" >&2; exit 1; }
echo "cli-check: completion and docs/devbox.1 cover $(echo $commands | wc -w) commands"
