"""Upload progress on stderr: a bar in a terminal, a line now and then in a log (CI).

Sizes everywhere (bar, lines, summary, ``bundle list``) are in binary units spelled as such
(KiB, MiB, GiB), so one number never reads differently in two places.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

#: Without a terminal, a progress line at most every this many seconds...
DEFAULT_INTERVAL = 5.0
#: ...and only after at least this share of the bundle more was sent: at most ~10 lines.
STEP_SHARE = 0.1


def human_size(size: int | None) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.0 GiB`` (``-`` for an unknown size)."""
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


class BinarySpeedColumn(ProgressColumn):
    """The transfer speed in KiB/s, MiB/s (rich's own column speaks kB/s, MB/s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "?" if speed is None else f"{human_size(int(speed))}/s"
        return Text(shown, style="progress.data.speed")


class ProgressLines:
    """Progress for a log: a line at the start, one when both ``interval`` seconds and 10% of
    the bundle have passed since the last, and one at the end."""

    def __init__(
        self,
        console: Console,
        description: str,
        size: int,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.description = description
        self.size = size
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.last_time = self.started
        self.last_sent = -1
        self.base = 0

    def _line(self, sent: int, now: float, tail: str) -> None:
        share = 100 if self.size == 0 else sent * 100 // self.size
        self.console.print(
            f"progress: {escape(self.description)}  {human_size(sent)} of "
            f"{human_size(self.size)} ({share}%){tail}"
        )
        self.last_time, self.last_sent = now, sent

    def start(self, offset: int) -> None:
        self._line(offset, self.clock(), "")
        self.base = offset

    def update(self, sent: int) -> None:
        now = self.clock()
        if sent >= self.size:
            if self.last_sent != self.size:
                elapsed = now - self.started
                self._line(sent, now, f" in {elapsed:.1f} s")
            return
        if sent - self.last_sent < self.size * STEP_SHARE:
            return
        if now - self.last_time < self.interval:
            return
        speed = (sent - self.base) / max(now - self.started, 1e-9)
        self._line(sent, now, f"  {human_size(int(speed))}/s")


@contextmanager
def upload_progress(
    console: Console, description: str, size: int, offset: int, interval: float
) -> Iterator[Callable[[int], None]]:
    """A callback taking the bytes sent so far: a rich bar in a terminal, else lines."""
    if not console.is_terminal:
        lines = ProgressLines(console, description, size, interval=interval)
        lines.start(offset)
        yield lines.update
        return
    progress = Progress(
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        BinarySpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(description, total=size)
        progress.update(task, completed=offset)
        yield lambda sent: progress.update(task, completed=sent)
