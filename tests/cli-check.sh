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
[ "$(complete_bash devbox ex)" = exec ] || bad "bash completion of 'devbox ex': $(complete_bash devbox ex)"
[ "$(complete_bash devbox -C /tmp statu)" = status ] || bad "bash completion after -C DIR"
[ "$(complete_bash devbox status --j)" = --json ] || bad "bash completion of 'devbox status --j'"
complete_bash devbox exec --sh | grep -qx -- --shell || bad "bash completion of 'devbox exec --sh'"
complete_bash devbox completion z | grep -x zsh >/dev/null || bad "bash completion of 'devbox completion z'"
complete_bash devbox exec -e A=1 -- bas | grep -x bash >/dev/null || bad "bash completion of a command name after exec"
mkdir -p "$tmp/cwd" && touch "$tmp/cwd/afile"
(cd "$tmp/cwd" && complete_bash devbox exec -- cat af) | grep -x afile >/dev/null ||
    bad "bash completion of a file after exec's command"

[ "$fails" = 0 ] || { echo "cli-check: $fails problem(s)" >&2; exit 1; }
echo "cli-check: completion and docs/devbox.1 cover $(echo $commands | wc -w) commands"
