"""The typer commands ``bundle upload``, ``bundle list`` and ``bundle delete``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from capgo_server.bundle_cli.api import ApiClient, CliError, Refusal, explain, list_bundles
from capgo_server.bundle_cli.upload import UploadRequest, stderr, upload_bundle
from capgo_server.tus_client import DEFAULT_CHUNK_SIZE

bundle_cli = typer.Typer(
    name="bundle",
    help="Upload, list and delete the bundles of an app on a capgo-server (an API client; "
    "--api and --apikey can come from CAPGO_API and CAPGO_APIKEY).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")


def fail(message: str) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {escape(_one_line(message))}")
    raise typer.Exit(1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


ApiOption = Annotated[
    str,
    typer.Option(
        "--api",
        envvar="CAPGO_API",
        help="Base URL of the server's API, e.g. https://capgo.example.com.",
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str,
    typer.Option("--apikey", envvar="CAPGO_APIKEY", help="An API key.", show_default=False),
]
AppIdOption = Annotated[
    str, typer.Option("--app-id", help="The app, e.g. com.example.app.", show_default=False)
]
VersionOption = Annotated[
    str,
    typer.Option("--version", help="The bundle's version name, e.g. 1.2.3.", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except CliError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        fail("interrupted")


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


@bundle_cli.command("upload")
def upload_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="The built web folder (its index.html ends up at the zip's root), or a zip.",
            show_default=False,
        ),
    ],
    api: ApiOption,
    apikey: ApiKeyOption,
    app_id: AppIdOption,
    version: VersionOption,
    channel: Annotated[
        str | None,
        typer.Option(
            help="Set the bundle on this channel (created if missing).", show_default=False
        ),
    ] = None,
    org_id: Annotated[
        str | None,
        typer.Option(help="The app's organization (needed only by keys that cannot read apps)."),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Bytes sent per request (tus PATCH).")
    ] = DEFAULT_CHUNK_SIZE,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries after an interrupted connection.")
    ] = 5,
    json_output: JsonOption = False,
) -> None:
    """Zip and upload a bundle, resuming after interruptions; optionally set it on a channel."""
    request = UploadRequest(
        api, apikey, app_id, version, path, channel, org_id, chunk_size, retries
    )
    result = run(upload_bundle(request))
    if json_output:
        echo_json(result.as_json())
        return
    typer.echo(f"uploaded {result.app_id} {result.version}")
    typer.echo(f"  size     {human_size(result.size)} ({result.size} bytes)")
    typer.echo(f"  sha256   {result.checksum}")
    if result.channel:
        state = "created" if result.channel_created else "updated"
        typer.echo(f"  channel  {result.channel} ({state})")


@bundle_cli.command("list")
def list_command(
    api: ApiOption, apikey: ApiKeyOption, app_id: AppIdOption, json_output: JsonOption = False
) -> None:
    """List an app's bundles, newest first."""

    async def fetch() -> list[dict[str, Any]]:
        async with ApiClient(api, apikey) as client:
            return await list_bundles(client, app_id)

    rows = run(fetch())
    if json_output:
        echo_json(rows)
        return
    if not rows:
        stderr.print(f"no bundles for {app_id}")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("version", "created_at", "size", "checksum", "storage"):
        table.add_column(header, no_wrap=True)
    for row in rows:
        created = str(row.get("created_at") or "")[:19].replace("T", " ")
        table.add_row(
            str(row.get("name")),
            created,
            human_size(row.get("size")),
            str(row.get("checksum") or "-")[:12],
            str(row.get("storage_provider") or "-"),
        )
    stdout = Console(highlight=False)
    if not stdout.is_terminal:  # piped: never truncate a column to some assumed width
        stdout = Console(highlight=False, width=1000)
    stdout.print(table)


@bundle_cli.command("delete")
def delete_command(
    api: ApiOption,
    apikey: ApiKeyOption,
    app_id: AppIdOption,
    version: VersionOption,
    json_output: JsonOption = False,
) -> None:
    """Delete one bundle (it is never served again; its version name stays taken)."""

    async def remove() -> None:
        async with ApiClient(api, apikey) as client:
            body = {"app_id": app_id, "version": version}
            response = await client.call("DELETE", "/bundle", body=body)
            if response.status_code == 200:
                return
            refusal = Refusal.of(response)
            if refusal.code == "cannot_delete_version":
                raise CliError(f"version {version} not found for {app_id}")
            raise await explain(
                client, refusal, app_id=app_id, action="delete bundles", modes="all or write"
            )

    run(remove())
    if json_output:
        echo_json({"app_id": app_id, "version": version, "deleted": True})
    else:
        typer.echo(f"deleted {app_id} {version}")
