"""README.md's shell examples, run in order against a fresh server, so the README cannot rot.

Every fenced ``sh`` block runs, top to bottom, in one ``bash`` with ``set -euo pipefail`` (so the
variables one block captures carry to the next), unless the line right before it is a visible
skip marker, ``<!-- readme-test: skip (why) -->``, for what cannot run here (``make run``, which
starts the server: the test starts ``capgo-server serve`` itself with the same defaults; a
PostgreSQL server; a restore that needs the server stopped...). ``curl`` is wrapped to fail on an
HTTP error, so an example answering 400 fails the test. The shell runs in a temporary folder
where ``.venv/bin`` is this test's virtualenv, as in a checkout, with the server's data in
``./data`` as ``make run`` keeps it; ``http://127.0.0.1:8000`` in the examples is replaced by the
test server's address (it listens on a free port).

SQLite only: the README is the first hour of a newcomer, who runs ``make run`` (SQLite), and its
backup example copies ``data/capgo.db``; what the examples exercise on PostgreSQL is covered, route
by route, by the rest of the suite on both engines, and the README's PostgreSQL commands
(``createdb``, ``pg_dump``) need a server of their own. One run takes about a minute.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.test_cli import CLI, cli_env
from tests.test_serve import running_server

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP_MARKER = re.compile(r"<!-- readme-test: skip \((?P<why>[^)]*)\) -->")
FENCE = re.compile(r"^```(?P<lang>.*)$")
#: Fenced blocks in these languages are shown, never run (configuration files, not commands).
SHOWN_ONLY = {"json", "nginx", "caddyfile"}
#: The address the examples use; the test's server listens elsewhere.
README_SERVER = "http://127.0.0.1:8000"
RUN_SECONDS = 300
BLOCK_START = "@@readme-block"
ALL_DONE = "@@readme-done"


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None  # why it is not run, from the marker before it


def read_blocks(text: str) -> tuple[list[Block], list[str]]:
    """The fenced blocks of ``text``, and what is wrong with its fences and markers: a block in a
    language that is neither run (``sh``) nor shown only, a block left open, a skip marker
    without a reason or not right before an ``sh`` block."""
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = SKIP_MARKER.fullmatch(line.strip())
        if marker is not None:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if following.strip() != "```sh":
                problems.append(f"line {index + 1}: skip marker not right before a ```sh block")
            if not marker["why"].strip():
                problems.append(f"line {index + 1}: skip marker without a reason")
        elif line.strip().startswith("<!-- readme-test"):
            problems.append(f"line {index + 1}: malformed readme-test marker: {line.strip()}")
        fence = FENCE.match(line)
        if fence is None:
            index += 1
            continue
        lang = fence["lang"].strip()
        start = index
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            index += 1
        if index == len(lines):
            problems.append(f"line {start + 1}: block never closed")
            break
        previous = SKIP_MARKER.fullmatch(lines[start - 1].strip()) if start else None
        code = "\n".join(lines[start + 1 : index])
        blocks.append(Block(start + 1, lang, code, previous["why"] if previous else None))
        if lang != "sh" and lang not in SHOWN_ONLY:
            problems.append(
                f"line {start + 1}: a ```{lang} block is neither run (```sh) nor a known "
                f"configuration language {sorted(SHOWN_ONLY)}"
            )
        index += 1
    return blocks, problems


def runnable(blocks: list[Block]) -> list[Block]:
    return [block for block in blocks if block.lang == "sh" and block.skip is None]


def script_for(blocks: list[Block], server_url: str) -> str:
    """One bash script: a failing ``curl``, then each block after a line naming it."""
    parts = [
        "set -euo pipefail",
        'curl() { command curl --fail-with-body -sS "$@"; }',
    ]
    for number, block in enumerate(blocks, start=1):
        parts.append(f"printf '\\n{BLOCK_START} {number} (README.md line {block.line})\\n'")
        parts.append(block.code.replace(README_SERVER, server_url))
    parts.append(f"printf '\\n{ALL_DONE}\\n'")
    return "\n".join(parts) + "\n"


def failure_report(output: str, blocks: list[Block]) -> str:
    """The block that failed, its code and what it printed."""
    started = re.findall(rf"^{BLOCK_START} (\d+) ", output, flags=re.MULTILINE)
    if not started:
        return f"no block started:\n{output[-3000:]}"
    block = blocks[int(started[-1]) - 1]
    printed = output[output.rindex(f"{BLOCK_START} {started[-1]} ") :]
    return (
        f"README.md block at line {block.line} failed:\n{block.code}\n"
        f"--- its output ---\n{printed[-4000:]}"
    )


# --- the README's fences and markers -------------------------------------------------------


def test_every_sh_block_of_the_readme_is_run_or_skipped_with_a_reason() -> None:
    blocks, problems = read_blocks(README.read_text())
    assert problems == []
    shell = [block for block in blocks if block.lang == "sh"]
    skipped = [block for block in shell if block.skip is not None]
    # The tour is the README's body: most of its examples run, a few are skipped out loud.
    assert len(runnable(blocks)) >= 12, [block.line for block in runnable(blocks)]
    assert len(skipped) < len(shell) / 2, [(block.line, block.skip) for block in skipped]


def test_a_hidden_example_or_a_stray_marker_is_reported() -> None:
    text = "\n".join(
        [
            "```sh",
            "echo runs",
            "```",
            "<!-- readme-test: skip (starts the server) -->",
            "```sh",
            "make run",
            "```",
            "```bash",
            "echo hidden",
            "```",
            "<!-- readme-test: skip () -->",
            "text between",
            "```",
            "echo no language",
            "```",
            "<!-- readme-test: skipped -->",
            "```sh",
            "echo open",
        ]
    )
    blocks, problems = read_blocks(text)
    assert [(block.line, block.lang, block.skip) for block in blocks] == [
        (1, "sh", None),
        (5, "sh", "starts the server"),
        (8, "bash", None),
        (13, "", None),
    ]
    assert [block.code for block in runnable(blocks)] == ["echo runs"]
    assert problems == [
        "line 8: a ```bash block is neither run (```sh) nor a known configuration language "
        "['caddyfile', 'json', 'nginx']",
        "line 11: skip marker not right before a ```sh block",
        "line 11: skip marker without a reason",
        "line 13: a ``` block is neither run (```sh) nor a known configuration language "
        "['caddyfile', 'json', 'nginx']",
        "line 16: malformed readme-test marker: <!-- readme-test: skipped -->",
        "line 17: block never closed",
    ]


def test_a_failing_example_fails_the_run_and_names_its_block(tmp_path: Path) -> None:
    blocks = [
        Block(3, "sh", "X=1", None),
        Block(9, "sh", 'echo "x is $X"\ncurl http://127.0.0.1:1/unreachable', None),
        Block(20, "sh", "echo never", None),
    ]
    result = subprocess.run(
        ["bash", "-c", script_for(blocks, "http://unused")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ALL_DONE not in output
    assert "never" not in output
    report = failure_report(output, blocks)
    assert report.startswith("README.md block at line 9 failed:\n")
    assert "x is 1" in report


# --- the README, run ------------------------------------------------------------------------


def test_the_readme_runs_top_to_bottom_on_a_fresh_server(tmp_path: Path) -> None:
    blocks, problems = read_blocks(README.read_text())
    assert problems == []
    to_run = runnable(blocks)
    checkout = tmp_path / "checkout"
    (checkout / ".venv").mkdir(parents=True)
    (checkout / ".venv" / "bin").symlink_to(CLI.parent, target_is_directory=True)
    # The defaults of `make run`: data in ./data, no CAPGO_* setting.
    env = cli_env(checkout / "data", CAPGO_DATA_DIR=None)
    with running_server(env, checkout) as server:
        script = checkout / "readme.sh"
        script.write_text(script_for(to_run, server.base_url))
        result = subprocess.run(
            ["bash", str(script)],
            cwd=checkout,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=RUN_SECONDS,
            check=False,
        )
        output = result.stdout
        assert result.returncode == 0, failure_report(output, to_run)
        assert output.rstrip().endswith(ALL_DONE), failure_report(output, to_run)
        assert len(re.findall(rf"^{BLOCK_START} ", output, flags=re.MULTILINE)) == len(to_run)
        # Refusals of the device protocol are HTTP 200: check the flow itself went through.
        assert "bundle.zip: OK" in output  # the update's download matched its checksum
        assert '{"status":"ok","allowSet":true}' in output  # the device chose beta
        assert '"version":"1.0.2"' in output  # and was offered beta's bundle
        assert "\nok\n" in output  # the backup's integrity check
        # The features the tour shows off went through, not only answered 200.
        assert '"invite_write","is_tmp":true' in output  # an invitation to a not-yet-user...
        assert '"invitations": [{"org_id": ' in output  # ...handed over by create-user
        assert '"role":"write"}' in output  # and accepted
        assert '{"revoked": [' in output  # revoke-key, by id and by e-mail
        assert "channel  beta (created)" in output  # upload --create-channel
        assert "channel production of com.example.app: 1.0.1 -> 1.0.2" in output  # promote
        assert f'"updateUrl": "{server.base_url}/updates"' in output  # GET /: this server
        assert (checkout / "mau.svg").read_text().startswith("<?xml")
        assert "Traceback" not in server.output(), server.output()
    assert (checkout / "data" / "capgo.db").is_file()  # the server used ./data, as make run
