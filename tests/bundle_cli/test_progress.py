"""Upload progress: the lines written to a log on a clock the test moves, the terminal bar's
units, and the sizes in binary units."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from capgo_server.bundle_cli.progress import ProgressLines, human_size, upload_progress

MIB = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def log_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, highlight=False, no_color=True), buffer


class TestProgressLines:
    def test_a_line_needs_both_the_interval_and_a_tenth_of_the_bundle(self) -> None:
        console, buffer = log_console()
        clock = Clock()
        lines = ProgressLines(console, "com.x 1.0.0", 10 * MIB, interval=5, clock=clock)
        lines.start(0)
        clock.now += 1
        lines.update(3 * MIB)  # 30% but only 1 s: nothing
        clock.now += 9
        lines.update(3 * MIB + 1)  # 10 s: a line
        clock.now += 1
        lines.update(int(4.5 * MIB))  # 15% further but 1 s after the last line: nothing
        clock.now += 5
        lines.update(int(4.5 * MIB))  # both: a line
        clock.now += 60
        lines.update(int(4.5 * MIB) + 1024)  # a minute later but hardly further: nothing
        clock.now += 0.5
        lines.update(10 * MIB)  # the end is always told
        lines.update(10 * MIB)  # once
        assert buffer.getvalue().splitlines() == [
            "progress: com.x 1.0.0  0 B of 10.0 MiB (0%)",
            "progress: com.x 1.0.0  3.0 MiB of 10.0 MiB (30%)  307.2 KiB/s",
            "progress: com.x 1.0.0  4.5 MiB of 10.0 MiB (45%)  288.0 KiB/s",
            "progress: com.x 1.0.0  10.0 MiB of 10.0 MiB (100%) in 76.5 s",
        ]

    def test_a_resumed_upload_starts_at_its_offset_and_its_speed_counts_what_it_sent(
        self,
    ) -> None:
        console, buffer = log_console()
        clock = Clock()
        lines = ProgressLines(console, "com.x 1.0.0", 10 * MIB, interval=0, clock=clock)
        lines.start(6 * MIB)
        clock.now += 2
        lines.update(8 * MIB)
        assert buffer.getvalue().splitlines() == [
            "progress: com.x 1.0.0  6.0 MiB of 10.0 MiB (60%)",
            "progress: com.x 1.0.0  8.0 MiB of 10.0 MiB (80%)  1.0 MiB/s",
        ]

    def test_a_thousand_chunks_make_a_dozen_lines_at_most(self) -> None:
        console, buffer = log_console()
        clock = Clock()
        lines = ProgressLines(console, "com.x 1.0.0", 1000 * MIB, interval=5, clock=clock)
        lines.start(0)
        for chunk in range(1, 1001):
            clock.now += 1
            lines.update(chunk * MIB)
        logged = buffer.getvalue().splitlines()
        assert len(logged) == 11
        assert logged[-1] == "progress: com.x 1.0.0  1000.0 MiB of 1000.0 MiB (100%) in 1000.0 s"


class TestTerminalBar:
    def test_the_bar_speaks_binary_units(self) -> None:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, width=150, no_color=True)
        with upload_progress(console, "com.x 1.0.0", 3 * MIB, 0, interval=5) as shown:
            shown(MIB)
            shown(3 * MIB)
        text = buffer.getvalue()
        assert "3.0/3.0 MiB" in text
        assert re.search(r" \d+\.\d [KMG]iB/s ", text), text
        assert not re.search(r"\d [kKMG]B\b", text), text  # rich's own columns say kB, MB


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * MIB, "5.0 MiB"),
        (3 * 1024 * MIB, "3.0 GiB"),
        (2048 * 1024 * MIB, "2048.0 GiB"),
    ],
)
def test_human_size(size: int | None, shown: str) -> None:
    assert human_size(size) == shown
