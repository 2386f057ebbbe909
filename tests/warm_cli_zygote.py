"""The process behind :mod:`tests.warm_cli`: it imports ``capgo-server`` once, then forks a child
per command, which runs the console script's ``main()`` with the command's argv, environment,
working directory and output files, and exits as the interpreter would.

Run as ``python tests/warm_cli_zygote.py REPLY_FD``. Requests are JSON lines on stdin
(``{"program", "args", "env", "cwd", "stdout", "stderr", "umask"}``); for each, two lines go to
REPLY_FD: the child's pid when it starts, then its exit status (negative: the signal that ended
it), as ``subprocess`` reports a ``returncode``.

Only the standard library is imported before the loop's modules: nothing here may start a
thread, open a connection or read a ``CAPGO_*`` variable before a fork.
"""

from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

#: What the commands import on their first use (the database stack, the API client): loaded
#: once here, so that a command pays only for its own work. Importing them has no effect
#: besides defining things, as in the real process that imports them later.
PRELOADED = (
    "capgo_server.cli",
    "capgo_server.cli_support",
    "capgo_server.settings",
    "capgo_server.db.engine",
    "capgo_server.db.migrate",
    "capgo_server.users.service",
    "capgo_server.users.operator",
    "capgo_server.apikeys.service",
    "capgo_server.apps.reservations",
    "capgo_server.bundle_cli",
    "capgo_server.tus_client",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "aiosqlite",
    "asyncpg",
    "httpx",
)


def exit_status(exc: SystemExit) -> int:
    """What the interpreter makes of an uncaught ``SystemExit``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    sys.stderr.write(f"{exc.code}\n")
    return 1


def run_command(request: dict[str, Any]) -> None:
    """In the forked child: become the command's process, run it, exit. Never returns."""
    status = 1
    try:
        stdin = os.open(os.devnull, os.O_RDONLY)
        stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
            os.close(source)
        # Not the loop's sys.stdin, which holds requests it read ahead.
        sys.stdin = io.TextIOWrapper(
            io.BufferedReader(io.FileIO(0, closefd=False)),
            encoding=sys.stdin.encoding,
            errors=sys.stdin.errors,
        )
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        sys.argv = [request["program"], *request["args"]]
        from capgo_server.cli import main

        try:
            main()
            status = 0
        except SystemExit as exc:
            status = exit_status(exc)
        except BaseException:
            traceback.print_exc()
            status = 1
        # What interpreter shutdown does: wait for threads, run atexit callbacks, flush.
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def serve(reply_fd: int) -> None:
    for name in PRELOADED:
        importlib.import_module(name)
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(reply_fd, "w", buffering=1) as replies:
        for line in sys.stdin:
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                os.close(reply_fd)
                run_command(request)
            replies.write(f"{pid}\n")
            _, wait_status = os.waitpid(pid, 0)
            replies.write(f"{os.waitstatus_to_exitcode(wait_status)}\n")


if __name__ == "__main__":
    # As for the console script, the first entry of the path is the script's folder (the
    # venv's bin), not this file's (tests/, whose modules must not shadow anything).
    sys.path[0] = str(Path(sys.executable).parent)
    serve(int(sys.argv[1]))
