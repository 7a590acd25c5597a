#!/usr/bin/env bash
# tests/cli-check.sh [DEVBOX]: every command, flag and subcommand of `devbox --help` (and
# `devbox exec --help`) appears in `devbox completion bash`, in `devbox completion zsh` and in
# docs/devbox.1; both scripts parse; both complete commands, a command's flags and exec's command
# line; every command prints its usage for --help, -h and `devbox help COMMAND` (stdout, exit
# 0); usage errors are one line on stderr and 125; --version says "devbox VERSION".  No VM.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVBOX=$(realpath -- "${1:-$ROOT/build/devbox}") # the checks run it from other directories
MAN=$ROOT/docs/devbox.1
tmp=$(mktemp -d /tmp/devbox-cli-check.XXXXXX)
trap 'rm -rf --one-file-system -- "$tmp"' EXIT
fails=0
bad() { echo "cli-check: $*" >&2; fails=$((fails + 1)); }

export DEVBOX_HOME=$tmp/home # what runs a command makes its state directories there
"$DEVBOX" --help >"$tmp/usage"
"$DEVBOX" exec --help >"$tmp/exec-usage"
"$DEVBOX" completion bash >"$tmp/bash"
"$DEVBOX" completion zsh >"$tmp/zsh"
bash -n "$tmp/bash" || bad "the bash completion script does not parse"
if command -v zsh >/dev/null; then zsh -n "$tmp/zsh" || bad "the zsh completion script does not parse"; fi
if "$DEVBOX" completion fish >/dev/null 2>&1; then bad "completion accepts an unknown shell"; fi
# the man page with roff escapes undone: \- is -, \fB..\fR are fonts
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' "$MAN" >"$tmp/man"

# the case branch of command $1 in the zsh script: its first line to the next branch
zsh_branch() { awk -v c="    $1)" 'index($0, c) == 1 { on = 1; print; next } on && /^    [^ ]/ { exit } on' "$tmp/zsh"; }
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
    # exec --help: its usage lines and the options it explains ("  -i, --interactive  ...")
    [ "$c" = exec ] && flags+=" $({ grep -E '^  devbox exec' "$tmp/exec-usage" |
        grep -oE -- '(^| |\[)--?[a-zA-Z][a-zA-Z-]*'; grep -oE -- '^  (-[a-zA-Z], )?--?[a-zA-Z][a-zA-Z-]*' \
        "$tmp/exec-usage" | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*'; } | sed 's/^[ [|]*//' | sort -u)"
    for f in $flags; do
        grep -qE -- "^    $c\) words=\"([^\"]* )?$f( [^\"]*)?\"" "$tmp/bash" ||
            bad "flag '$f' of '$c' missing from the bash completion"
        grep -qE -- "compadd -- ([^;]* )?$f( |;|\$)" <(zsh_branch "$c") ||
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
for f in -C --network --help --version; do
    grep -q -- "$f" "$tmp/man" || bad "global option '$f' missing from docs/devbox.1"
done
# subcommands: the first word of each alternative of a usage line ("port add HOST:GUEST | rm
# HOST | ls", "image ls [--json] | image rm ...", "completion bash|zsh") is in the completion's
# words for the command, and the other way round; the man page names each
subs_of_usage() { # COMMAND: the subcommands its usage lines name
    grep "^  devbox $1\b" "$tmp/usage" | sed -E 's/^  devbox (.*[^ ])  .*/\1/; s/^  devbox //' |
        sed 's/ | /\n/g' | sed -E "s/^$1( |\$)//" | { grep -oE '^[a-z]+(\|[a-z]+)*( |$)' || true; } |
        tr '|' '\n' | tr -d ' ' | sort -u
}
for c in $commands; do
    [ "$c" = help ] && continue # completes the command names
    usubs=$(subs_of_usage "$c")
    csubs=$(sed -n "s/^    $c) words=\"\(.*\)\" ;;\$/\1/p" "$tmp/bash" | tr ' ' '\n' | grep -v '^-' | sort -u || true)
    [ "$usubs" = "$csubs" ] || bad "subcommands of '$c': usage says '$(echo $usubs)', bash completion '$(echo $csubs)'"
    for sub in $usubs; do
        grep -qE -- "compadd -- ([^;]* )?$sub( |;|\$)" <(zsh_branch "$c") ||
            bad "subcommand '$c $sub' missing from the zsh completion"
        grep -qE -- "(^|[^a-zA-Z-])$sub([^a-zA-Z-]|\$)" "$tmp/man" ||
            bad "subcommand '$c $sub' missing from docs/devbox.1"
    done
done
grep -q '^\.BR\? "\?image ls' "$tmp/man" && grep -q 'image mirror' "$tmp/man" ||
    bad "docs/devbox.1 has no 'image ls' or 'image mirror' entry"
# each command once in the zsh descriptions and the bash command list
dups=$(sed -n "s/^        '\([a-z-]*\):.*/\1/p" "$tmp/zsh" | sort | uniq -d)
[ -z "$dups" ] || bad "commands listed twice in the zsh completion: $dups"
dups=$(sed -n "s/^    '') words=\"\(.*\)\" ;;\$/\1/p" "$tmp/bash" | tr ' ' '\n' | sort | uniq -d)
[ -z "$dups" ] || bad "words listed twice in the bash completion: $dups"

# --help, -h and `devbox help COMMAND`: that command's usage lines, on stdout, exit 0, through
# the lean client (exec, enter, status) and the full devbox (the others, which it hands over)
run() { # ARGS...: $out, $err, $rc of devbox
    rc=0
    "$DEVBOX" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out=$(cat "$tmp/out") err=$(cat "$tmp/err")
}
for c in $commands; do
    for h in --help -h; do
        run "$c" "$h"
        [ "$rc" = 0 ] && [ -z "$err" ] && [ "${out%%$'\n'*}" = usage: ] ||
            bad "devbox $c $h: exit $rc, stdout '${out%%$'\n'*}...', stderr '$err'"
        while IFS= read -r line; do
            grep -qxF -- "$line" "$tmp/out" || bad "devbox $c $h lacks its usage line '$line'"
        done < <(grep "^  devbox $c\b" "$tmp/usage")
    done
    cp "$tmp/out" "$tmp/help-c"
    run help "$c"
    [ "$rc" = 0 ] && cmp -s "$tmp/out" "$tmp/help-c" || bad "devbox help $c differs from devbox $c -h (exit $rc)"
done
run help
[ "$rc" = 0 ] && cmp -s "$tmp/out" "$tmp/usage" || bad "devbox help differs from devbox --help (exit $rc)"
run help exec
cmp -s "$tmp/out" "$tmp/exec-usage" || bad "devbox help exec differs from devbox exec --help"
run exec -i --help # after other options: exec's getopt, the same text
cmp -s "$tmp/out" "$tmp/exec-usage" || bad "devbox exec -i --help differs from devbox exec --help"
run help nosuch
[ "$rc" = 125 ] && [ -z "$out" ] && [ -n "$err" ] || bad "devbox help nosuch: exit $rc, stdout '$out'"
# exec --help explains every option exec takes (cmd-exec.c's getopt table)
for o in -i --interactive -t --tty -e --env -w --workdir -u --user --admin --shell -d --detach \
    --timeout -h --help; do
    grep -qE -- "^  (-[a-z], )?$o\b|^  -[a-z], $o\b" "$tmp/exec-usage" || bad "devbox exec --help does not explain $o"
done
grep -q -- '-e K\b' "$tmp/exec-usage" || bad "devbox exec --help does not explain -e K"
grep -E '^  devbox exec \[-i\]' "$tmp/usage" | grep -- '--timeout' >/dev/null ||
    bad "devbox --help: no --timeout on the main exec line"

# usage errors: stderr, exit 125, nothing on stdout; getopt's as one devbox line
usage_error() { # EXPECTED-STDERR-REGEX ARGS...
    local want=$1
    shift
    run "$@"
    [ "$rc" = 125 ] && [ -z "$out" ] || bad "devbox $*: exit $rc, stdout '$out' (want 125, nothing)"
    [[ $err =~ $want ]] || bad "devbox $*: stderr '$err', want /$want/"
}
usage_error "^devbox: exec: invalid option '-x' \(see devbox exec --help\)\$" exec -x -- true
usage_error "^devbox: exec: invalid option '-x' \(see devbox exec --help\)\$" exec --tty -ix -- true
usage_error "^devbox: exec: invalid option '--bogus' \(see devbox exec --help\)\$" exec --bogus=1 true
usage_error "^devbox: exec: option '--timeout' needs a value \(see devbox exec --help\)\$" exec --timeout
usage_error "^devbox: exec: option '-e' needs a value \(see devbox exec --help\)\$" exec -e
usage_error "^devbox: exec: option '--admin' takes no value \(see devbox exec --help\)\$" exec --admin=1 id
usage_error "^devbox: export: invalid option '--bogus' \(see devbox export --help\)\$" export --bogus kubernetes
usage_error "^devbox: export: option '-o' needs a value \(see devbox export --help\)\$" export kubernetes -o
usage_error "^devbox: ps: invalid option '--bogus'" ps --bogus
usage_error "^devbox: status: invalid option '--bogus'" status --bogus
# one line, with the nearest command when a typo or two away
usage_error "^devbox: unknown command 'nosuch' \(see devbox --help\)\$" nosuch
usage_error "^devbox: unknown command 'exe' \(did you mean 'exec'\? see devbox --help\)\$" exe
usage_error "^devbox: unknown command 'stauts' \(did you mean 'status'\? see devbox --help\)\$" stauts
usage_error "^devbox: unknown command 'imgaes' \(did you mean 'images'\? see devbox --help\)\$" imgaes
usage_error "^devbox: unknown command 'x' \(see devbox --help\)\$" x
usage_error "^devbox: unknown command 'ent' \(did you mean 'enter'\? see devbox --help\)\$" ent
usage_error "^devbox: unknown command 'st' \(see devbox --help\)\$" st
usage_error "^devbox: unknown command 'exe' \(did you mean 'exec'\? see devbox --help\)\$" help exe
usage_error "^devbox: unknown port subcommand 'ad' \(did you mean 'add'\? see devbox port --help\)\$" port ad 3000:3000
usage_error "^devbox: unknown kernel subcommand 'stat' \(did you mean 'status'\? see devbox kernel --help\)\$" kernel stat
usage_error "^devbox: unknown image subcommand 'lss' \(did you mean 'ls'\? see devbox image --help\)\$" image lss
usage_error "^devbox: unknown profile subcommand 'chek' \(did you mean 'check'\? see devbox profile --help\)\$" profile chek
usage_error "^devbox: unknown profile subcommand 'bogus' \(see devbox profile --help\)\$" profile bogus
usage_error "^usage: devbox port add HOST:GUEST" port add 3000x
usage_error "^usage: devbox port add HOST:GUEST" port --jsn
usage_error "^usage: devbox kernel build" kernel
usage_error "^devbox: unknown completion subcommand 'fish' \(see devbox completion --help\)\$" completion fish
# a hostile word is shown escaped, never raw (t-escape's rule, for the new lines)
usage_error "^devbox: unknown port subcommand '\\\\e\[2J\\\\x07' \(see devbox port --help\)\$" port $'\e[2J\a'
usage_error "^devbox: unknown command 'x{40}' \(see devbox --help\)\$" "$(printf 'x%.0s' $(seq 40))"

# --version and `devbox version`: one line, the same through the lean client and the full devbox
run --version
[ "$rc" = 0 ] && [ -z "$err" ] && [[ $out =~ ^devbox\ [^[:space:]]+$ ]] || bad "devbox --version: exit $rc, '$out' '$err'"
version=$out
# stdout on a full disk: one line, 125 (not 0 with the version lost)
rc=0
"$DEVBOX" --version >/dev/full 2>"$tmp/err" || rc=$?
[ "$rc/$(cat "$tmp/err")" = "125/devbox: write to stdout: No space left on device" ] ||
    bad "devbox --version >/dev/full: exit $rc, '$(cat "$tmp/err")'"
run version
[ "$rc/$out" = "0/$version" ] || bad "devbox version: exit $rc, '$out' (--version: '$version')"
full=$(dirname "$DEVBOX")/devbox-full
if [ -x "$full" ]; then
    [ "$("$full" --version)" = "$version" ] || bad "devbox-full --version differs: $("$full" --version)"
fi

# the bash script completes: commands, then a command's flags (grep without -q: under pipefail,
# a grep that quits at its match can kill the writer with SIGPIPE)
complete_bash() { # WORD...: print COMPREPLY for the last word
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _devbox; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$tmp/bash" "$@"
}
[ "$(complete_bash devbox exe)" = exec ] || bad "bash completion of 'devbox exe': $(complete_bash devbox exe)"
[ "$(complete_bash devbox -C /tmp statu)" = status ] || bad "bash completion after -C DIR"
[ "$(complete_bash devbox status --j)" = --json ] || bad "bash completion of 'devbox status --j'"
complete_bash devbox exec --sh | grep -x -- --shell >/dev/null || bad "bash completion of 'devbox exec --sh'"
complete_bash devbox completion z | grep -x zsh >/dev/null || bad "bash completion of 'devbox completion z'"
complete_bash devbox exec -e A=1 -- bas | grep -x bash >/dev/null || bad "bash completion of a command name after exec"
mkdir -p "$tmp/cwd" && touch "$tmp/cwd/afile"
(cd "$tmp/cwd" && complete_bash devbox exec -- cat af) | grep -x afile >/dev/null ||
    bad "bash completion of a file after exec's command"
# exec: after -- or the command word, no devbox flags; option values are not the command
[ -z "$(cd "$tmp/cwd" && complete_bash devbox exec -- ls --)" ] || bad "bash completion offers devbox flags after exec's command"
[ -z "$(cd "$tmp/cwd" && complete_bash devbox exec -- --sh)" ] || bad "bash completion offers devbox flags after exec --"
complete_bash devbox exec --timeout 5m ca | grep -x cat >/dev/null || bad "bash completion of a command name after --timeout's value"
complete_bash devbox exec -u dev -w /tmp ca | grep -x cat >/dev/null || bad "bash completion of a command name after -u's and -w's values"
# bash splits words at '=' (COMP_WORDBREAKS): -e K=V and --timeout=5m come as three words
complete_bash devbox exec -e FOO = bar ca | grep -x cat >/dev/null || bad "bash completion of a command name after -e K=V split at '='"
complete_bash devbox exec --timeout = 5m ca | grep -x cat >/dev/null || bad "bash completion of a command name after --timeout=5m split at '='"
complete_bash devbox exec --env-file /et | grep -x /etc >/dev/null || bad "bash completion of --env-file's value: a file"
[ -z "$(complete_bash devbox exec -e ca)" ] || bad "bash completion of -e's value offers something"
complete_bash devbox exec -w /et | grep -x /etc >/dev/null || bad "bash completion of -w's value: a directory"
complete_bash devbox help sta | grep -x status >/dev/null || bad "bash completion of 'devbox help sta'"
complete_bash devbox image mi | grep -x mirror >/dev/null || bad "bash completion of 'devbox image mi'"

# the zsh script, run against stubs of zsh's completion functions that print what they are
# asked: which branch completes what
complete_zsh() { # WORD...: the stubs' calls for the last word
    zsh -fc '
        compadd() { print -r -- "compadd $*" }
        _files() { print -r -- "_files $*" }
        _describe() { print -r -- "_describe $1 $2" }
        _command_names() { print -r -- "_command_names $*" }
        _normal() { print -r -- "_normal ${words[1]} $CURRENT" }
        compset() { [[ $1 == -n ]] && { words=("${(@)words[$2,-1]}"); ((CURRENT -= $2 - 1)) } }
        compdef() { : }
        source "$1"; shift
        words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}
        _devbox' _ "$tmp/zsh" "$@"
}
if command -v zsh >/dev/null; then
    [ "$(complete_zsh devbox exec -- cat REA)" = "_normal cat 2" ] ||
        bad "zsh completion of exec's command arguments: $(complete_zsh devbox exec -- cat REA)"
    [ "$(complete_zsh devbox exec -i -e A=1 --timeout 5m ca)" = "_command_names -e" ] ||
        bad "zsh completion of exec's command name: $(complete_zsh devbox exec -i -e A=1 --timeout 5m ca)"
    [ "$(complete_zsh devbox exec -- --sh)" = "_command_names -e" ] ||
        bad "zsh completion after exec --: $(complete_zsh devbox exec -- --sh)"
    complete_zsh devbox exec --sh | grep -- '^compadd -- .*--shell' >/dev/null || bad "zsh completion of exec's flags"
    [ "$(complete_zsh devbox exec -w '')" = "_files -/" ] || bad "zsh completion of -w's value"
    [ -z "$(complete_zsh devbox exec -u '')" ] || bad "zsh completion of -u's value offers something"
    [ "$(complete_zsh devbox exec -- ls -w '')" = "_normal ls 3" ] || bad "zsh completion of the command's own -w"
    [ "$(complete_zsh devbox '')" = "_describe -t commands" ] || bad "zsh completion of a command"
    [ "$(complete_zsh devbox help '')" = "_describe -t commands" ] || bad "zsh completion after help"
    complete_zsh devbox image '' | grep '^compadd -- .*mirror' >/dev/null || bad "zsh completion of image's subcommands"
fi

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
