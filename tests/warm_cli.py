"""``capgo-server`` commands as processes that start warm: :func:`run_cli_warm` is
:func:`tests.test_cli.run_cli` (same arguments, same ``CompletedProcess``), but the process is a
fresh fork of one that has already imported the package, not a new interpreter.

Importing the database stack takes about 2 s of CPU per command, more than most commands' own
work; a test file running a hundred commands spent most of its time there. Each command still
runs in a process of its own, with its own argv, environment, working directory, stdin
(``/dev/null``), stdout and stderr (files, not terminals, as pipes are), umask, and exits as the
interpreter would (threads joined, ``atexit`` callbacks run, a traceback and status 1 for an
uncaught exception): only the imports are shared, and a child changes nothing in its parent.

tests/test_cli.py keeps running the console script itself as a new interpreter.
"""

from __future__ import annotations

import atexit
import io
import json
import locale
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: The console script (tests/test_cli.py runs it as a new interpreter).
CLI = Path(sys.executable).with_name("capgo-server")
#: Seconds a command may take.
TIMEOUT = 60
ZYGOTE = Path(__file__).with_name("warm_cli_zygote.py")


class WarmCli:
    """One warm process (tests/warm_cli_zygote.py) and the commands it forks, one at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="capgo-warm-cli-"))
        self.log = (self.folder / "zygote.log").open("wb")
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, str(ZYGOTE), str(write_fd)],
            env=env,
            cwd=self.folder,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self.replies = read_fd
        self.pending = b""
        self.count = 0

    def _reply(self, deadline: float | None) -> int:
        """The next line of the reply pipe, as an integer; TimeoutError at ``deadline``."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.replies, selectors.EVENT_READ)
            while b"\n" not in self.pending:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not selector.select(wait):
                    raise TimeoutError
                chunk = os.read(self.replies, 4096)
                if not chunk:
                    log = (self.folder / "zygote.log").read_text(errors="replace")
                    raise RuntimeError(f"the warm capgo-server process ended:\n{log[-2000:]}")
                self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return int(line)

    def run(
        self, args: tuple[str, ...], env: dict[str, str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        self.count += 1
        stdout, stderr = (self.folder / f"{self.count}.{name}" for name in ("out", "err"))
        request = {
            "program": str(CLI),
            "args": list(args),
            "env": env,
            "cwd": str(cwd),
            "stdout": str(stdout),
            "stderr": str(stderr),
            "umask": _current_umask(),
        }
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        command = [str(CLI), *args]
        deadline = time.monotonic() + timeout
        pid = self._reply(deadline)
        try:
            status = self._reply(deadline)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)  # as subprocess.run does on a timeout
            self._reply(None)
            raise subprocess.TimeoutExpired(
                command, timeout, output=_text(stdout), stderr=_text(stderr)
            ) from None
        result = subprocess.CompletedProcess(command, status, _text(stdout), _text(stderr))
        stdout.unlink()
        stderr.unlink()
        return result

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the loop ends at the end of its input
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.replies)
        self.log.close()
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()


def _current_umask() -> int:
    """This process's umask, which a command started from it would inherit."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def _text(path: Path) -> str:
    """The file's bytes as ``subprocess.run(..., text=True)`` decodes a pipe's: the locale's
    encoding, universal newlines."""
    data = path.read_bytes() if path.exists() else b""
    encoding = locale.getpreferredencoding(False)
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()


_warm: dict[tuple[tuple[str, str], ...], WarmCli] = {}
_lock = threading.Lock()


#: Warm processes kept at once (the oldest is closed beyond that).
MAX_WARM = 3


def _environment_key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables a process may read as it starts and imports (locale, NO_COLOR, paths...):
    all but those read only when a command runs, the ``CAPGO_*`` settings, and pytest's
    ``PYTEST_CURRENT_TEST``, which changes with every test. Commands whose other variables
    differ get a warm process of their own."""
    return tuple(
        sorted(
            (key, value)
            for key, value in env.items()
            if not key.startswith("CAPGO_") and key != "PYTEST_CURRENT_TEST"
        )
    )


def run_cli_warm(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """:func:`tests.test_cli.run_cli`, in a fork of a warm process; not for ``serve``, whose
    tests start it as a new interpreter."""
    assert args[:1] != ("serve",), "serve runs as a new interpreter: tests.test_serve"
    key = _environment_key(env)
    with _lock:
        warm = _warm.get(key)
        if warm is None or warm.process.poll() is not None:
            if warm is not None:
                del _warm[key]
                warm.close()
            while len(_warm) >= MAX_WARM:
                _warm.pop(next(iter(_warm))).close()
            warm = _warm[key] = WarmCli(dict(key))
        try:
            return warm.run(args, env, cwd, timeout)
        except subprocess.TimeoutExpired:
            raise
        except BaseException:
            # A broken pipe or a test interrupted mid-command: the next command starts afresh.
            del _warm[key]
            warm.close()
            raise


@atexit.register
def _close_all() -> None:
    with _lock:
        for warm in _warm.values():
            warm.close()
        _warm.clear()
