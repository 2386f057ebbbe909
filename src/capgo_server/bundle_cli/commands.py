"""The typer commands ``bundle upload``, ``promote``, ``list`` and ``delete``."""

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
from capgo_server.bundle_cli.channels import Promotion, private_channel_notes, promote
from capgo_server.bundle_cli.progress import DEFAULT_INTERVAL, human_size
from capgo_server.bundle_cli.upload import UploadRequest, UploadResult, stderr, upload_bundle
from capgo_server.tus_client import DEFAULT_CHUNK_SIZE
from capgo_server.validation import is_app_id

bundle_cli = typer.Typer(
    name="bundle",
    help="Upload, promote, list and delete the bundles of an app on a capgo-server (an API "
    "client; --api and --apikey can come from CAPGO_API and CAPGO_APIKEY).",
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
CreateChannelOption = Annotated[
    bool,
    typer.Option(
        "--create-channel",
        help="Create the channel if it does not exist (a new channel is private).",
    ),
]


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
            help="Set the bundle on this channel, which must exist (else nothing is uploaded); "
            "default: the app's default upload channel.",
            show_default=False,
        ),
    ] = None,
    create_channel: CreateChannelOption = False,
    no_channel: Annotated[
        bool,
        typer.Option("--no-channel", help="Only upload: set the bundle on no channel."),
    ] = False,
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
    progress_interval: Annotated[
        float,
        typer.Option(
            min=0,
            help="Without a terminal (CI logs): seconds at least between progress lines, "
            "each also at least 10% of the bundle further.",
        ),
    ] = DEFAULT_INTERVAL,
    json_output: JsonOption = False,
) -> None:
    """Zip and upload a bundle, resuming after interruptions, and set it on a channel.

    The channel is --channel, else the app's default upload channel; it must exist unless
    --create-channel is given. When no channel serves the bundle, a warning says how to promote it.
    """
    request = UploadRequest(
        api,
        apikey,
        app_id,
        version,
        path,
        channel,
        org_id,
        chunk_size,
        retries,
        create_channel=create_channel,
        no_channel=no_channel,
        progress_interval=progress_interval,
    )
    result = run(upload_bundle(request))
    if json_output:
        echo_json(result.as_json())
        return
    typer.echo(f"uploaded {result.app_id} {result.version}")
    typer.echo(f"  size     {human_size(result.size)} ({result.size} bytes)")
    typer.echo(f"  sha256   {result.checksum}")
    typer.echo(f"  channel  {_channel_summary(result)}")


def _channel_summary(result: UploadResult) -> str:
    plan = result.plan
    if plan.name is None:
        return "none (--no-channel)" if plan.warning is None else "none (see the warning)"
    state = "created" if plan.creates else f"updated, was {plan.previous}"
    default = "; the app's default upload channel" if plan.source == "default" else ""
    return f"{plan.name} ({state}{default})"


@bundle_cli.command("promote")
def promote_command(
    api: ApiOption,
    apikey: ApiKeyOption,
    app_id: AppIdOption,
    version: VersionOption,
    channel: Annotated[
        str, typer.Option(help="The channel, by name, e.g. production.", show_default=False)
    ],
    create_channel: CreateChannelOption = False,
    json_output: JsonOption = False,
) -> None:
    """Set an uploaded bundle on an existing channel, by names (also to roll back)."""

    async def change() -> Promotion:
        if not is_app_id(app_id):
            raise CliError(f"{app_id!r} is not an app id (expected e.g. com.example.app)")
        if not channel.strip():
            raise CliError("--channel is empty: give a channel name")
        async with ApiClient(api, apikey) as client:
            return await promote(client, app_id, version, channel, create=create_channel)

    done = run(change())
    if done.changed and done.previous is None:
        for note in private_channel_notes(app_id, channel):
            stderr.print(f"[bold]note:[/] {escape(note)}")
    if json_output:
        echo_json(done.as_json())
    elif not done.changed:
        typer.echo(f"channel {channel} of {app_id} already serves {version}: nothing changed")
    elif done.previous is None:
        typer.echo(f"channel {channel} of {app_id}: created, serving {version}")
    else:
        typer.echo(f"channel {channel} of {app_id}: {done.previous} -> {version}")


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
