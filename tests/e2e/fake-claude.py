#!/usr/bin/env python3
"""tests/e2e/fake-claude.py DIR COMMAND: run COMMAND the way Claude Code's Bash tool does, with
CLAUDE_CODE_SHELL_PREFIX from the environment, from DIR; print the combined output, then one
line "cwd-after: PATH" (the directory Claude Code would be in afterwards), and exit with the
command's exit code.

A transcription of Claude Code's command assembly, as in its readable sources
(src/utils/shell/bashProvider.ts buildExecCommand, src/utils/bash/shellQuoting.ts
quoteShellCommand, src/utils/bash/shellPrefix.ts formatShellPrefixCommand, src/utils/Shell.ts
exec: spawn, cwd file), with shell-quote 1.8.4's quote(), the version it bundles.  Pipes are
refused: Claude Code moves its `< /dev/null` into the first pipe stage (rearrangePipeCommand),
which is not transcribed here; the prefix sees the same kind of one string either way."""
import os
import random
import re
import subprocess
import sys
import tempfile


def quote(xs):
    """shell-quote 1.8.4 quote() for string tokens."""
    out = []
    for s in xs:
        if s == "":
            out.append("''")
        elif re.search(r'["\s\\]', s) and "'" not in s:
            out.append("'" + s + "'")
        elif re.search(r"[\"'\s]", s):
            out.append('"' + re.sub(r'(["\\$`!])', r"\\\1", s) + '"')
        else:
            out.append(re.sub(r"([A-Za-z]:)?([#!\"$&'()*,:;<=>?@\[\\\]^`{|}])",
                              lambda m: (m.group(1) or "") + "\\" + m.group(2), s))
    return " ".join(out)


def contains_heredoc(c):
    if re.search(r"\d\s*<<\s*\d", c) or re.search(r"\[\[\s*\d+\s*<<\s*\d+\s*\]\]", c) or \
            re.search(r"\$\(\(.*<<.*\)\)", c):
        return False
    return re.search(r"<<-?\s*(?:(['\"]?)(\w+)\1|\\(\w+))", c) is not None


def contains_multiline_string(c):
    return re.search(r"'(?:[^'\\]|\\.)*\n(?:[^'\\]|\\.)*'", c) is not None or \
        re.search(r'"(?:[^"\\]|\\.)*\n(?:[^"\\]|\\.)*"', c) is not None


def should_add_stdin_redirect(c):
    if contains_heredoc(c):
        return False
    return re.search(r"(?:^|[\s;&|])<(?![<(])\s*\S+", c) is None


def quote_shell_command(c, add_redirect):
    if contains_heredoc(c) or contains_multiline_string(c):
        q = "'" + c.replace("'", "'\"'\"'") + "'"
        if contains_heredoc(c):
            return q
        return q + " < /dev/null" if add_redirect else q
    return quote([c, "<", "/dev/null"]) if add_redirect else quote([c])


def format_shell_prefix_command(prefix, command):
    last_sep = max(prefix.rfind("/"), prefix.rfind("\\"))
    i = prefix.find(" -")
    while 0 < i < last_sep:
        i = prefix.find(" -", i + 2)
    if i > 0:
        return f"{quote([prefix[:i]])} {prefix[i + 1:]} {quote([command])}"
    return f"{quote([prefix])} {quote([command])}"


def main():
    cwd, command = sys.argv[1], sys.argv[2]
    if "|" in command:
        sys.exit("fake-claude: pipes are not transcribed")
    # A snapshot that exists on the host (Claude Code then spawns without -l); the box has no
    # such file: the command's `source ... || true` fails quietly there, as intended.
    home = os.environ.get("HOME", "/tmp")
    snap = os.path.join(home, ".claude", "shell-snapshots", "snapshot-bash-1-abcdef.sh")
    os.makedirs(os.path.dirname(snap), exist_ok=True)
    with open(snap, "w") as f:
        f.write("# fake snapshot\n")
    cwd_file = os.path.join(tempfile.gettempdir(), "claude-%04x-cwd" % random.randrange(65536))
    add = should_add_stdin_redirect(command)
    parts = [f"source {quote([snap])} 2>/dev/null || true"]
    if os.environ.get("CLAUDE_CODE_SHELL_PREFIX"):
        parts.append("{ shopt -u extglob || setopt NO_EXTENDED_GLOB; } >/dev/null 2>&1 || true")
    else:
        parts.append("shopt -u extglob 2>/dev/null || true")
    parts.append(f"eval {quote_shell_command(command, add)}")
    parts.append(f"pwd -P >| {quote([cwd_file])}")
    cs = " && ".join(parts)
    if os.environ.get("CLAUDE_CODE_SHELL_PREFIX"):
        cs = format_shell_prefix_command(os.environ["CLAUDE_CODE_SHELL_PREFIX"], cs)
    shell = "/bin/bash"
    env = dict(os.environ, SHELL=shell, GIT_EDITOR="true", CLAUDECODE="1")
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([shell, "-c", cs], cwd=cwd, env=env, stdin=subprocess.PIPE,
                             stdout=out, stderr=out, start_new_session=True)
        rc = p.wait()
        p.stdin.close()
        out.seek(0)
        sys.stdout.buffer.write(out.read())
    new_cwd = cwd
    try:  # Shell.ts: the directory the command ended in, if the file is there
        with open(cwd_file) as f:
            new_cwd = f.read().strip()
        os.unlink(cwd_file)
    except OSError:
        pass
    print("cwd-after: " + new_cwd)
    sys.exit(rc)


main()
