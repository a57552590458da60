#!/usr/bin/env python3
"""Run a command with a new pseudo-terminal as its controlling terminal,
as an operator's SSH session would give it.

Usage: pty_run.py TYPEAHEAD ARGV...

TYPEAHEAD (with \\n for newlines) is typed into the terminal at once,
before the command has read anything: input typed ahead. After that, every
line this script reads on its own stdin is typed into the terminal, and
everything the terminal shows is copied to this script's stdout. When the
command ends, prints `exit=N` and exits.
"""
import os
import pty
import select
import sys


def main():
    typeahead = sys.argv[1].encode().decode("unicode_escape").encode()
    argv = sys.argv[2:]
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    os.write(master, typeahead)
    out = sys.stdout.buffer
    stdin_open = True
    while True:
        fds = [master] + ([sys.stdin.fileno()] if stdin_open else [])
        ready, _, _ = select.select(fds, [], [], 0.1)
        if master in ready:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if not data:
                break
            out.write(data)
            out.flush()
        if stdin_open and sys.stdin.fileno() in ready:
            line = os.read(sys.stdin.fileno(), 4096)
            if line:
                os.write(master, line)
            else:
                stdin_open = False
    _, status = os.waitpid(pid, 0)
    out.write(b"\nexit=%d\n" % os.waitstatus_to_exitcode(status))
    out.flush()


if __name__ == "__main__":
    main()
