/* sandbox/cmd-completion.c: the table of devbox's commands, and `devbox completion bash|zsh`.
 *
 * main() dispatches from this table and prints its usage from it; the completion scripts are
 * generated from it too, so a command or flag added here cannot be missing from them.
 * tests/cli-check.sh checks that every command and flag of the usage appears in both scripts
 * and in docs/devbox.1. */
#define _GNU_SOURCE
#include "commands.h"

const struct cmd_def cmd_table[] = {
    {"exec", cmd_exec, "exec [-i] [-t] [-e K=V] [-w DIR] [-u USER] [--admin] [--] CMD [ARG...]",
     "run a command in the project's VM",
     "-i --interactive -t --tty -e --env -w --workdir -u --user --admin --shell -d --detach "
     "--timeout --help",
     NULL},
    {"exec", cmd_exec, "exec -d [--timeout DURATION] [--] CMD [ARG...]",
     "start a detached command (prints its pid; --timeout: exit 124 at the deadline)", NULL, NULL},
    {"exec", cmd_exec, "exec [OPTIONS] --shell [--] 'CMD STRING'",
     "run a command string with the box user's shell", NULL, NULL},
    {"enter", cmd_enter, "enter", "interactive shell in the project's VM", NULL, NULL},
    {"status", cmd_status, "status [--json]", "state of the project's VM", "--json", NULL},
    {"ls", cmd_ls, "ls [--json]", "every project devbox knows", "--json", NULL},
    {"stats", cmd_stats, "stats [--json] [--watch]",
     "the box's cpu, memory, pids and io counters (--watch: every 2 s)", "--json --watch", NULL},
    {"stop", cmd_stop, "stop [PATH|ID] | stop --all",
     "shut the project's VM down cleanly (--all: every running one)", "--all", NULL},
    {"restart", cmd_restart, "restart", "stop the VM, then start it with devbox.ini as it is now",
     NULL, NULL},
    {"rm", cmd_rm, "rm [--force] [PATH|ID] | rm --all [--force]",
     "delete a project's VM, disk and logs (its directory may be gone)", "--force -f --all", NULL},
    {"gc", cmd_gc, "gc [--dry-run]",
     "remove projects whose repository is gone, leftovers and unused disks", "--dry-run -n", NULL},
    {"reset", cmd_reset, "reset [--force]",
     "throw the box's disk away: start again from image + [setup]", "--force -f", NULL},
    {"setup", cmd_setup, "setup [--force]",
     "apply devbox.ini's [setup] now (--force: run it again)", "--force -f", NULL},
    {"port", cmd_port, "port add HOST:GUEST | rm HOST | ls",
     "forward 127.0.0.1:HOST to the box's GUEST port", NULL, "add rm ls"},
    {"logs", cmd_logs, "logs [--network|--setup|...]",
     "the project's logs (network: every proxy decision)",
     "--network --setup --supervisor --console --qemu --virtiofsd -f", NULL},
    {"events", cmd_events, "events [--json] [--follow] [-n N]",
     "what happened in the box: starts, stops, commands, denials", "--json --follow -f -n", NULL},
    {"logs", cmd_logs, "logs [-f] PID", "a detached command's output (-f: follow it)", NULL, NULL},
    {"ps", cmd_ps, "ps [--json]", "the box's processes (D: detached, A: attached)", "--json", NULL},
    {"kill", cmd_kill, "kill [-s SIG] PID|--all", "signal a process of the box (default TERM)",
     "-s --signal --all", NULL},
    {"profile", cmd_profile, "profile check | profile show [--json]",
     "validate or explain devbox.ini", "--json", "check show"},
    {"trust", cmd_trust, "trust", "allow this repo's devbox.ini to widen the default", NULL, NULL},
    {"pull", cmd_pull, "pull [--platform P] REF",
     "fetch an image from a registry (docker.io implied)", "--platform", NULL},
    {"images", cmd_images, "images [--json]", "the local images, their sizes and users", "--json",
     NULL},
    {"rmi", cmd_rmi, "rmi [--force] IMAGE...", "remove images no project uses", "--force -f", NULL},
    {"image", cmd_image, "image import FILE [NAME] | inspect IMAGE | prune",
     "docker save / OCI layout / rootfs tar", NULL, "import inspect prune"},
    {"kernel", cmd_kernel, "kernel build [--jobs N] | kernel status [--json]",
     "build the devbox guest kernel once per machine, or say if it is ready", "--jobs --json",
     "build status"},
    {"export", cmd_export,
     "export kubernetes [--format sandbox|pod] [--runtime-class RC] [--namespace NS] "
     "[--clone-image IMAGE] [-o DIR]",
     "the profile as Kubernetes manifests (agent-sandbox, Kata; docs/kubernetes.md)",
     "--format --runtime-class --namespace --clone-image -o --output --help", "kubernetes"},
    {"completion", cmd_completion, "completion bash|zsh",
     "print a shell completion script (source it, or install it)", NULL, "bash zsh"},
};
const size_t cmd_table_len = DBX_ARRAY_SIZE(cmd_table);

/* The options before the command (main.c parses them). */
static const char global_words[] = "-C --network --help";

/* Commands whose operands are files or other commands: completion falls back to those. */
static bool takes_files(const char *name) {
    return strcmp(name, "exec") == 0 || strcmp(name, "image") == 0;
}

/* Every command once (exec has two usage lines), space-separated. */
static char *command_names(void) {
    _cleanup_free_ char *s = dbx_xstrdup("");
    for (size_t i = 0; i < cmd_table_len; i++) {
        if (i > 0 && strcmp(cmd_table[i].name, cmd_table[i - 1].name) == 0) continue;
        char *n = dbx_xasprintf("%s%s%s", s, *s ? " " : "", cmd_table[i].name);
        free(s);
        s = n;
    }
    return TAKE_PTR(s);
}

/* The words completed after a command: its flags and subcommands. */
static char *command_words(const struct cmd_def *c) {
    return dbx_xasprintf("%s%s%s", c->flags ? c->flags : "", c->flags && c->subs ? " " : "",
                         c->subs ? c->subs : "");
}

static void print_bash(void) {
    _cleanup_free_ char *names = command_names();
    printf("# bash completion for devbox: generated by `devbox completion bash`.\n"
           "# Load it with: source <(devbox completion bash), or install it as\n"
           "# /usr/share/bash-completion/completions/devbox (make install does).\n"
           "_devbox() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    local i j cmd= seen=\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        case ${COMP_WORDS[i]} in\n"
           "        -C | --network) ((i++)) ;;\n"
           "        -*) ;;\n"
           "        *) cmd=${COMP_WORDS[i]}; break ;;\n"
           "        esac\n"
           "    done\n"
           "    case $prev in\n"
           "    -C | -w | --workdir) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"
           "    --network) COMPREPLY=($(compgen -W none -- \"$cur\")); return ;;\n"
           "    esac\n"
           "    local words=\n"
           "    case $cmd in\n"
           "    '') words=\"%s %s\" ;;\n",
           global_words, names);
    for (size_t i = 0; i < cmd_table_len; i++) {
        const struct cmd_def *c = &cmd_table[i];
        if (!c->flags && !c->subs) continue;
        _cleanup_free_ char *w = command_words(c);
        printf("    %s) words=\"%s\" ;;\n", c->name, w);
    }
    printf("    esac\n"
           "    if [[ $cur == -* || ($cmd != exec && $cmd != image) ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
           "    elif [[ $cmd == exec ]]; then\n"
           "        # a command name, then its arguments: files\n"
           "        for ((j = i + 1; j < COMP_CWORD; j++)); do\n"
           "            case ${COMP_WORDS[j]} in\n"
           "            -e | -w | -u | --env | --workdir | --user) ((j++)) ;;\n"
           "            -*) ;;\n"
           "            *) seen=1; break ;;\n"
           "            esac\n"
           "        done\n"
           "        if [[ $seen ]]; then COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "        else COMPREPLY=($(compgen -c -- \"$cur\")); fi\n"
           "    else\n"
           "        COMPREPLY=($(compgen -W \"$words\" -f -- \"$cur\"))\n"
           "    fi\n"
           "}\n"
           "complete -F _devbox devbox\n");
}

/* zsh's single-quoted strings: ' becomes '\''. */
static void print_zsh_quoted(const char *s) {
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    }
    putchar('\'');
}

static void print_zsh(void) {
    printf("#compdef devbox\n"
           "# zsh completion for devbox: generated by `devbox completion zsh`.\n"
           "# Load it with: source <(devbox completion zsh) (after compinit), or install it as\n"
           "# _devbox in a directory of $fpath (make install does).\n"
           "_devbox() {\n"
           "    local -a commands\n"
           "    commands=(\n");
    for (size_t i = 0; i < cmd_table_len; i++) {
        const struct cmd_def *c = &cmd_table[i];
        if (i > 0 && strcmp(c->name, cmd_table[i - 1].name) == 0) continue;
        _cleanup_free_ char *e = dbx_xasprintf("%s:%s", c->name, c->desc);
        printf("        ");
        print_zsh_quoted(e);
        printf("\n");
    }
    printf("    )\n"
           "    local i cmd=\n"
           "    for ((i = 2; i < CURRENT; i++)); do\n"
           "        case ${words[i]} in\n"
           "        -C | --network) ((i++)) ;;\n"
           "        -*) ;;\n"
           "        *) cmd=${words[i]}; break ;;\n"
           "        esac\n"
           "    done\n"
           "    case ${words[CURRENT-1]} in\n"
           "    -C | -w | --workdir) _files -/; return ;;\n"
           "    --network) compadd none; return ;;\n"
           "    esac\n"
           "    case $cmd in\n"
           "    '')\n"
           "        if [[ $PREFIX == -* ]]; then compadd -- %s\n"
           "        else _describe -t commands 'devbox command' commands; fi ;;\n",
           global_words);
    for (size_t i = 0; i < cmd_table_len; i++) {
        const struct cmd_def *c = &cmd_table[i];
        if (!c->flags && !c->subs) continue;
        _cleanup_free_ char *w = command_words(c);
        if (strcmp(c->name, "exec") == 0)
            printf("    exec)\n"
                   "        if [[ $PREFIX == -* ]]; then compadd -- %s\n"
                   "        else _command_names -e; fi ;;\n",
                   w);
        else
            printf("    %s) compadd -- %s%s ;;\n", c->name, w,
                   takes_files(c->name) ? "; _files" : "");
    }
    printf("    esac\n"
           "}\n"
           "if [[ $funcstack[1] == _devbox ]]; then\n"
           "    _devbox \"$@\"  # autoloaded from $fpath\n"
           "else\n"
           "    compdef _devbox devbox  # sourced\n"
           "fi\n");
}

int cmd_completion(struct cmd_ctx *ctx, int argc, char **argv) {
    (void)ctx;
    if (argc == 2 && strcmp(argv[1], "bash") == 0)
        print_bash();
    else if (argc == 2 && strcmp(argv[1], "zsh") == 0)
        print_zsh();
    else {
        fprintf(stderr, "usage: devbox completion bash|zsh\n");
        return 125;
    }
    return fflush(stdout) == 0 ? 0 : 125;
}
