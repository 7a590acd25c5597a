/* sandbox/cmd-completion.c: the table of devbox's commands, and `devbox completion bash|zsh`.
 *
 * cmd_dispatch() (cmd-help.c) dispatches from this table and prints the usage, and each
 * command's, from it; the completion scripts are generated from it too, so a command or flag
 * added here cannot be missing from them.  tests/cli-check.sh checks that every command, flag
 * and subcommand of the usage appears in both scripts and in docs/devbox.1. */
#define _GNU_SOURCE
#include "commands.h"

/* exec's options, for `devbox exec --help` (docs/devbox.1 says more) */
static const char exec_help[] =
    "options:\n"
    "  -i, --interactive   pass stdin to the command\n"
    "  -t, --tty           give the command a terminal\n"
    "  -e, --env K=V       set K in the command's environment; -e K: K's value here\n"
    "                      (not set when K is not set here)\n"
    "  --env-file FILE     K=V lines, as docker's: blank and # lines skipped, K alone as -e K;\n"
    "                      -e wins\n"
    "  -w, --workdir DIR   its working directory in the box (relative: to the current one)\n"
    "  -u, --user USER     run as USER (name, uid or uid:gid)\n"
    "  --admin             run this one command as root with the capabilities package\n"
    "                      managers need (chown, dac_override, fowner, setuid, setgid, ...:\n"
    "                      Docker's default set), whatever the profile grants; the box's\n"
    "                      other commands keep its policy\n"
    "  --shell             run one command string with the box user's shell ($SHELL -c)\n"
    "  -d, --detach        start the command, print its pid in the box and return; it keeps\n"
    "                      running (output: devbox logs [-f] PID; devbox ps; devbox kill PID);\n"
    "                      no -i or -t\n"
    "  --timeout DURATION  kill the command and every process it started after DURATION\n"
    "                      (30, 30s, 5m, 1h, 2d; at most 30 days): exit 124, as timeout(1)\n"
    "  -h, --help          this usage\n";

/* enter's options: exec's that make sense for a login shell */
static const char enter_help[] =
    "options (as exec's; -i and -t are implied):\n"
    "  -e, --env K=V       set K in the shell's environment; -e K: K's value here\n"
    "  --env-file FILE     K=V lines, as exec's\n"
    "  -w, --workdir DIR   start in DIR (relative: to the current one)\n"
    "  -u, --user USER     the shell of USER (name, uid or uid:gid)\n"
    "  --admin             a root shell with the capabilities package managers need\n"
    "  -h, --help          this usage\n";

/* the logs `logs [--network|--setup|...]` abbreviates, and what the operands are */
static const char logs_help[] =
    "options:\n"
    "  --network     every proxy decision (allowed, denied and why)\n"
    "  --setup       what [setup] printed\n"
    "  --supervisor  the supervisor's log (the default)\n"
    "  --console     the guest's console\n"
    "  --qemu        QEMU's log\n"
    "  --virtiofsd   the shared folders' log (virtiofsd)\n"
    "  -n, --tail N  only the last N lines\n"
    "  -f, --follow  then what is added, until ^C or the project is removed (with PID: until\n"
    "                the command is over); a log that starts over is followed from its start\n"
    "operands:\n"
    "  PID           a detached command's, as exec -d printed it (a lone number is a PID)\n"
    "  PATH|ID       another project, as for stop and rm\n";

const struct cmd_def cmd_table[] = {
    {"exec", cmd_exec,
     "exec [-i] [-t] [-e K=V] [--env-file FILE] [-w DIR] [-u USER | --admin] [--timeout DURATION] "
     "[--] CMD [ARG...]",
     "run a command in the project's VM (--timeout: exit 124 at the deadline)",
     "-i --interactive -t --tty -e --env --env-file -w --workdir -u --user --admin --shell -d "
     "--detach --timeout -h --help",
     NULL, exec_help},
    {"exec", cmd_exec, "exec -d [--timeout DURATION] [--] CMD [ARG...]",
     "start a detached command (prints its pid in the box)", NULL, NULL, NULL},
    {"exec", cmd_exec, "exec [OPTIONS] --shell [--] 'CMD STRING'",
     "run a command string with the box user's shell", NULL, NULL, NULL},
    {"enter", cmd_enter, "enter [-e K=V] [--env-file FILE] [-w DIR] [-u USER | --admin]",
     "interactive shell in the project's VM (--admin: a root shell)",
     "-e --env --env-file -w --workdir -u --user --admin -h --help", NULL, enter_help},
    {"status", cmd_status, "status [--json] [PATH|ID]", "state of the project's VM", "--json", NULL,
     NULL},
    {"ls", cmd_ls, "ls [--json]", "every project devbox knows", "--json", NULL, NULL},
    {"stats", cmd_stats, "stats [--json] [--watch] [PATH|ID]",
     "the box's cpu, memory, pids and io counters (--watch: every 2 s)", "--json --watch", NULL,
     NULL},
    {"stop", cmd_stop, "stop [PATH|ID] | stop --all",
     "shut the project's VM down cleanly (--all: every running one)", "--all", NULL, NULL},
    {"restart", cmd_restart, "restart [PATH|ID]",
     "stop the VM, then start it with devbox.ini as it is now", NULL, NULL, NULL},
    {"rm", cmd_rm, "rm [--force] [PATH|ID] | rm --all [--force]",
     "delete a project's VM, disk and logs (its directory may be gone)", "--force -f --all", NULL,
     NULL},
    {"gc", cmd_gc, "gc [--dry-run]",
     "remove projects whose repository is gone, leftovers and unused disks", "--dry-run -n", NULL,
     NULL},
    {"reset", cmd_reset, "reset [--force]",
     "throw the box's disk away: start again from image + [setup]", "--force -f", NULL, NULL},
    {"setup", cmd_setup, "setup [--force]",
     "apply devbox.ini's [setup] now (--force: run it again)", "--force -f", NULL, NULL},
    {"port", cmd_port, "port add HOST:GUEST | rm HOST | ls [--json]",
     "forward 127.0.0.1:HOST to the box's GUEST port", "--json", "add rm ls", NULL},
    {"logs", cmd_logs, "logs [--network|--setup|...] [-f] [-n N] [PATH|ID]",
     "the project's logs (network: every proxy decision; -f: follow)",
     "--network --setup --supervisor --console --qemu --virtiofsd -f --follow -n --tail", NULL,
     logs_help},
    {"events", cmd_events, "events [--json] [--follow] [-n|--tail N] [PATH|ID]",
     "what happened in the box: starts, stops, commands, denials", "--json --follow -f -n --tail",
     NULL, NULL},
    {"logs", cmd_logs, "logs [-f] [-n N] PID [PATH|ID]",
     "a detached command's output (-f: until it ends)", NULL, NULL, NULL},
    {"ps", cmd_ps, "ps [--json] [PATH|ID]", "the box's processes (D: detached, A: attached)",
     "--json", NULL, NULL},
    {"kill", cmd_kill, "kill [-s SIG] PID|--all", "signal a process of the box (default TERM)",
     "-s --signal --all", NULL, NULL},
    {"profile", cmd_profile, "profile check | profile show [--json]",
     "validate or explain devbox.ini", "--json", "check show", NULL},
    {"trust", cmd_trust, "trust", "allow this repo's devbox.ini to widen the default", NULL, NULL,
     NULL},
    {"pull", cmd_pull, "pull [--platform P] REF",
     "fetch an image from a registry (docker.io implied)", "--platform", NULL, NULL},
    {"images", cmd_images, "images [--json]", "the local images, their sizes and users", "--json",
     NULL, NULL},
    {"rmi", cmd_rmi, "rmi [--force] IMAGE...", "remove images no project uses", "--force -f", NULL,
     NULL},
    {"image", cmd_image, "image import [--platform P] FILE [NAME]",
     "docker save / OCI layout / rootfs tar, as an image", "--platform --json --force -f",
     "import inspect ls rm prune mirror", NULL},
    {"image", cmd_image, "image inspect IMAGE", "an image's config, layers, digests and users",
     NULL, NULL, NULL},
    {"image", cmd_image, "image ls [--json] | image rm [--force] IMAGE...",
     "the same as images and rmi", NULL, NULL, NULL},
    {"image", cmd_image, "image prune",
     "remove unused derived disks, base disks and blobs (not images)", NULL, NULL, NULL},
    {"image", cmd_image, "image mirror", "the Debian mirror the default image is built from", NULL,
     NULL, NULL},
    {"kernel", cmd_kernel, "kernel build [--jobs N] | kernel status [--json]",
     "build the devbox guest kernel once per machine, or say if it is ready", "--jobs --json",
     "build status", NULL},
    {"export", cmd_export,
     "export kubernetes [--format sandbox|pod] [--runtime-class RC] [--namespace NS] "
     "[--clone-image IMAGE] [-o DIR]",
     "the profile as Kubernetes manifests (agent-sandbox, Kata; docs/kubernetes.md)",
     "--format --runtime-class --namespace --clone-image -o --output --help", "kubernetes", NULL},
    {"completion", cmd_completion, "completion bash|zsh",
     "print a shell completion script (source it, or install it)", NULL, "bash zsh", NULL},
    /* completed with the command names (print_bash, print_zsh) */
    {"help", cmd_help, "help [COMMAND]", "this usage, or that of one command", NULL, NULL, NULL},
    {"version", cmd_version, "version", "print devbox's version", NULL, NULL, NULL},
};
const size_t cmd_table_len = DBX_ARRAY_SIZE(cmd_table);

/* The options before the command (cmd_parse_global parses them). */
static const char global_words[] = "-C --network --help --version";

/* exec's options that take a value: the word after one is not the command */
#define EXEC_VALUE_OPTS "-e | -w | -u | --env | --env-file | --workdir | --user | --timeout"

/* Commands whose operands are files or other commands: completion falls back to those. */
static bool takes_files(const char *name) {
    return strcmp(name, "exec") == 0 || strcmp(name, "image") == 0;
}

/* Commands that name a project by its PATH (or ID): completion offers directories. */
static bool takes_project(const struct cmd_def *c) {
    return strstr(c->usage, "PATH|ID") != NULL;
}

/* The first entry of its name: exec, logs and image have several usage lines. */
static bool first_of_name(size_t i) {
    for (size_t k = 0; k < i; k++)
        if (strcmp(cmd_table[k].name, cmd_table[i].name) == 0) return false;
    return true;
}

/* Every command once, space-separated. */
static char *command_names(void) {
    _cleanup_free_ char *s = dbx_xstrdup("");
    for (size_t i = 0; i < cmd_table_len; i++) {
        if (!first_of_name(i)) continue;
        char *n = dbx_xasprintf("%s%s%s", s, *s ? " " : "", cmd_table[i].name);
        free(s);
        s = n;
    }
    return TAKE_PTR(s);
}

/* The words completed after a command: its flags and subcommands (help: the commands). */
static char *command_words(const struct cmd_def *c) {
    if (c->fn == cmd_help) return command_names();
    return dbx_xasprintf("%s%s%s", c->flags ? c->flags : "", c->flags && c->subs ? " " : "",
                         c->subs ? c->subs : "");
}

static bool completes_words(size_t i) {
    const struct cmd_def *c = &cmd_table[i];
    return first_of_name(i) && (c->flags || c->subs || c->fn == cmd_help);
}

/* "stop | rm | status ...": the commands takes_project completes with directories. */
static char *project_commands(void) {
    _cleanup_free_ char *s = dbx_xstrdup("");
    for (size_t i = 0; i < cmd_table_len; i++) {
        if (!first_of_name(i) || !takes_project(&cmd_table[i])) continue;
        char *n = dbx_xasprintf("%s%s%s", s, *s ? " | " : "", cmd_table[i].name);
        free(s);
        s = n;
    }
    return TAKE_PTR(s);
}

static void print_bash(void) {
    _cleanup_free_ char *names = command_names();
    printf("# bash completion for devbox: generated by `devbox completion bash`.\n"
           "# Load it with: source <(devbox completion bash), or install it as\n"
           "# /usr/share/bash-completion/completions/devbox (make install does).\n"
           "_devbox() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    local i j cmd= dashdash=\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        case ${COMP_WORDS[i]} in\n"
           "        -C | --network) ((i++)) ;;\n"
           "        -*) ;;\n"
           "        *) cmd=${COMP_WORDS[i]}; break ;;\n"
           "        esac\n"
           "    done\n"
           "    if [[ ! $cmd ]]; then\n"
           "        case $prev in\n"
           "        -C) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"
           "        --network) COMPREPLY=($(compgen -W none -- \"$cur\")); return ;;\n"
           "        esac\n"
           "    fi\n"
           "    local words=\n"
           "    case $cmd in\n"
           "    '') words=\"%s %s\" ;;\n",
           global_words, names);
    for (size_t i = 0; i < cmd_table_len; i++) {
        if (!completes_words(i)) continue;
        _cleanup_free_ char *w = command_words(&cmd_table[i]);
        printf("    %s) words=\"%s\" ;;\n", cmd_table[i].name, w);
    }
    _cleanup_free_ char *projects = project_commands();
    printf(
        "    esac\n"
        "    local dirs= # a project's PATH (an ID is not completed)\n"
        "    case $cmd in %s) dirs=1 ;; esac\n"
        "    if [[ $cmd == exec ]]; then\n"
        "        # exec's options (and their values), a command name, then its arguments: files\n"
        "        # bash splits -e K=V and --timeout=5m at '=' (COMP_WORDBREAKS): '=' and the word\n"
        "        # after it belong to the word before\n"
        "        for ((j = i + 1; j < COMP_CWORD; j++)); do\n"
        "            case ${COMP_WORDS[j]} in\n"
        "            --) dashdash=1; ((j++)); break ;;\n"
        "            " EXEC_VALUE_OPTS ") ((j++)); [[ ${COMP_WORDS[j]} == = ]] && ((j++)) ;;\n"
        "            =) ((j++)) ;;\n"
        "            -*) ;;\n"
        "            *) break ;;\n"
        "            esac\n"
        "        done\n"
        "        if ((j > COMP_CWORD)); then # the value of the option before\n"
        "            case $prev in -w | --workdir) COMPREPLY=($(compgen -d -- \"$cur\")) ;; "
        "--env-file) COMPREPLY=($(compgen -f -- \"$cur\")) ;; esac\n"
        "        elif ((j < COMP_CWORD)); then COMPREPLY=($(compgen -f -- \"$cur\"))\n"
        "        elif [[ ! $dashdash && $cur == -* ]]; then "
        "COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
        "        else COMPREPLY=($(compgen -c -- \"$cur\")); fi\n"
        "    elif [[ $cur == -* || ($cmd != image && ! $dirs) ]]; then\n"
        "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
        "    elif [[ $dirs ]]; then\n"
        "        COMPREPLY=($(compgen -W \"$words\" -d -- \"$cur\"))\n"
        "    else\n"
        "        COMPREPLY=($(compgen -W \"$words\" -f -- \"$cur\"))\n"
        "    fi\n"
        "}\n"
        "complete -F _devbox devbox\n",
        projects);
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

/* exec: its options, a command name, then that command's arguments as zsh completes them for
 * it (_normal on the words from the command on, as precommands like nice do). */
static void print_zsh_exec(const char *flags) {
    printf("    exec)\n"
           "        for ((j = i + 1; j < CURRENT; j++)); do\n"
           "            case ${words[j]} in\n"
           "            --) dashdash=1; ((j++)); break ;;\n"
           "            " EXEC_VALUE_OPTS ") ((j++)) ;;\n"
           "            -*) ;;\n"
           "            *) break ;;\n"
           "            esac\n"
           "        done\n"
           "        if ((j > CURRENT)); then # the value of the option before\n"
           "            [[ ${words[CURRENT-1]} == (-w|--workdir) ]] && _files -/\n"
           "        elif ((j < CURRENT)); then\n"
           "            compset -n $j; _normal\n"
           "        elif [[ -z $dashdash && $PREFIX == -* ]]; then compadd -- %s\n"
           "        else _command_names -e; fi ;;\n",
           flags);
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
        if (!first_of_name(i)) continue;
        _cleanup_free_ char *e = dbx_xasprintf("%s:%s", c->name, c->desc);
        printf("        ");
        print_zsh_quoted(e);
        printf("\n");
    }
    printf("    )\n"
           "    local i j cmd= dashdash=\n"
           "    for ((i = 2; i < CURRENT; i++)); do\n"
           "        case ${words[i]} in\n"
           "        -C | --network) ((i++)) ;;\n"
           "        -*) ;;\n"
           "        *) cmd=${words[i]}; break ;;\n"
           "        esac\n"
           "    done\n"
           "    if [[ -z $cmd ]]; then\n"
           "        case ${words[CURRENT-1]} in\n"
           "        -C) _files -/; return ;;\n"
           "        --network) compadd none; return ;;\n"
           "        esac\n"
           "    fi\n"
           "    case $cmd in\n"
           "    '')\n"
           "        if [[ $PREFIX == -* ]]; then compadd -- %s\n"
           "        else _describe -t commands 'devbox command' commands; fi ;;\n",
           global_words);
    for (size_t i = 0; i < cmd_table_len; i++) {
        const struct cmd_def *c = &cmd_table[i];
        if (!completes_words(i) && !(first_of_name(i) && takes_project(c))) continue;
        _cleanup_free_ char *w = command_words(c);
        const char *more = takes_files(c->name) ? "; _files"
                           : takes_project(c)   ? "; _files -/"
                                                : "";
        if (strcmp(c->name, "exec") == 0)
            print_zsh_exec(w);
        else if (c->fn == cmd_help)
            printf("    help) _describe -t commands 'devbox command' commands ;;\n");
        else if (*w)
            printf("    %s) compadd -- %s%s ;;\n", c->name, w, more);
        else /* restart: no flags, only the operand */
            printf("    %s) %s ;;\n", c->name, more + 2);
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
        if (argc < 2 || !cmd_unknown_sub("completion", argv[1]))
            fprintf(stderr, "usage: devbox completion bash|zsh\n");
        return 125;
    }
    return 0; /* a write error: cmd_stdout_done */
}
