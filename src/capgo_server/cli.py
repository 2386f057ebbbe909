"""The ``capgo-server`` command line.

Other tooling relies on these names and outputs: ``serve``, ``migrate``, ``create-user`` and
``release-app-id`` (which each print exactly one JSON object on stdout). Errors are one line on
stderr, exit code 1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from capgo_server.bundle_cli import bundle_cli

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from sqlalchemy.ext.asyncio import AsyncSession

    from capgo_server.settings import Settings

# The server commands import the database stack (SQLAlchemy, Alembic, FastAPI) inside their
# functions: it takes about a second to load, and ``bundle`` commands, which are pure API
# clients, should not pay for it.

cli = typer.Typer(
    name="capgo-server",
    help="A self-hostable, Capgo-compatible live-update server. Settings come from CAPGO_* "
    "environment variables (CAPGO_DATABASE_URL, CAPGO_DATA_DIR, CAPGO_PUBLIC_URL, CAPGO_SECRET).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)

# The same bounds as POST /organization.
MIN_ORG_NAME, MAX_ORG_NAME = 3, 200


def fail(message: str) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _settings() -> Settings:
    """The settings from the environment, or one clear line naming what is wrong; the data
    directory (and a local bundle store) restricted to the server's user."""
    from pydantic import ValidationError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from capgo_server.private_files import restrict_umask
    from capgo_server.settings import Settings

    # Before anything is created: the database, the secret and the bundles are owner-only.
    restrict_umask()
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CAPGO_{'_'.join(str(part) for part in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        fail(f"invalid setting: {problems}")
    try:
        make_url(settings.resolved_database_url)
    except ArgumentError:
        fail(f"CAPGO_DATABASE_URL is not a database URL: {settings.database_url!r}")
    if settings.database_url is None:
        try:
            settings.ensure_data_dir()
        except OSError as exc:
            fail(f"cannot create the data directory {settings.data_dir}: {exc.strerror or exc}")
    _tighten_private_folders(settings)
    return settings


def _tighten_private_folders(settings: Settings) -> None:
    """Remove group and other permissions under the data directory and a ``file://`` bundle
    store (an install made before they were created owner-only); says what it changed."""
    from capgo_server.private_files import tighten_tree

    folders = [settings.data_dir]
    if settings.storage_url and settings.storage_url.startswith("file://"):
        folders.append(Path(settings.storage_url.removeprefix("file://")))
    for folder in folders:
        try:
            tightened = tighten_tree(folder)
        except OSError as exc:  # another user's file: the server still runs, and says so
            stderr.print(
                f"warning: cannot restrict {escape(str(folder))} to its owner: {escape(str(exc))}",
                highlight=False,
                soft_wrap=True,
            )
            continue
        if tightened:
            stderr.print(
                f"restricted {tightened} files and folders under {escape(str(folder))} to their "
                "owner (they were readable by other users)",
                highlight=False,
                soft_wrap=True,
            )


async def _migrate(url: str) -> None:
    from capgo_server.db.engine import make_engine
    from capgo_server.db.migrate import upgrade_to_head

    engine = make_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


def _run_migrations(settings: Settings) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        asyncio.run(_migrate(settings.resolved_database_url))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot migrate {_display_url(settings)}: {_first_line(exc)}")


def _display_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _in_one_transaction(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[Mapping[str, object]]]
) -> Mapping[str, object]:
    """``work`` in one transaction on the migrated database; an unreachable one is the
    command's one-line error. What ``work`` raises on purpose goes to the caller."""
    from sqlalchemy.exc import SQLAlchemyError

    from capgo_server.db.engine import make_engine, make_sessionmaker
    from capgo_server.db.migrate import pending_migrations

    async def run() -> Mapping[str, object]:
        engine = make_engine(settings.resolved_database_url)
        try:
            if await pending_migrations(engine):
                fail("the database is not migrated: run `capgo-server migrate` first")
            async with make_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot reach the database at {_display_url(settings)}: {_first_line(exc)}")


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = _settings()
    _run_migrations(settings)
    stderr.print(
        f"database at {_display_url(settings)} is up to date", highlight=False, soft_wrap=True
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Apply pending migrations, then serve the API."""
    from capgo_server.serving import run

    if not os.environ.get("CAPGO_PUBLIC_URL"):
        # Upload and download URLs are built on the public URL, never on the Host header a
        # client chose; without one, it is the address served (workers inherit it).
        os.environ["CAPGO_PUBLIC_URL"] = served_url(host, port)
    settings = _settings()
    try:
        settings.resolved_secret()
    except RuntimeError as exc:
        fail(str(exc))
    if not is_loopback(host) and is_loopback(urlsplit(settings.public_url).hostname or ""):
        typer.echo(
            f"warning: serving on {host} but devices will be given URLs on "
            f"{settings.public_url}, which they cannot reach: set CAPGO_PUBLIC_URL to the "
            "address devices use (e.g. https://updates.example.com)",
            err=True,
        )
    _run_migrations(settings)
    run("capgo_server.app:create_served_app", host=host, port=port, workers=workers)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def served_url(host: str, port: int) -> str:
    """The URL of ``serve --host --port``: a wildcard address is no address a client can use,
    so it gives the loopback one (and ``serve`` warns)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@cli.command("create-user")
def create_user_command(
    email: Annotated[str, typer.Argument(help="The new user's e-mail address.")],
    org_name: Annotated[str | None, typer.Option(help="Name of the user's organization.")] = None,
    hashed: Annotated[bool, typer.Option(help="Store only a SHA-256 of the API key.")] = False,
) -> None:
    """Create a user, an organization they own and an API key of mode `all`.

    Prints {"user_id": ..., "org_id": ..., "apikey": ..., "invitations": [{"org_id": ...,
    "role": "invite_<role>"}]} on stdout: invitations kept for this e-mail are now the user's
    to accept or decline.
    """
    from email_validator import EmailNotValidError, validate_email

    from capgo_server.users.service import UserExistsError, create_user

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        fail(f"{email!r} is not an e-mail address: {exc}")
    if org_name is not None and not MIN_ORG_NAME <= len(org_name.strip()) <= MAX_ORG_NAME:
        fail(f"--org-name must be {MIN_ORG_NAME} to {MAX_ORG_NAME} characters long")
    settings = _settings()

    async def work(session: AsyncSession) -> dict[str, object]:
        return (await create_user(session, email, org_name, hashed_key=hashed)).as_json()

    try:
        result = _in_one_transaction(settings, work)
    except UserExistsError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


@cli.command("release-app-id")
def release_app_id_command(
    app_id: Annotated[str, typer.Argument(help="The deleted app's id, e.g. com.example.app.")],
) -> None:
    """Release a deleted app's id, so that any organization may create an app with it.

    A deleted app's id stays reserved for its organization, even once that is deleted.

    Devices in the field keep asking for its updates: whoever creates the id next serves them.

    Prints {"app_id": ..., "org_id": <the organization it was reserved for>} on stdout.

    Refused while an app holds the id.
    """

    from capgo_server.apps.reservations import ReleaseRefused, release_app_id
    from capgo_server.apps.service import MAX_APP_ID_LENGTH
    from capgo_server.validation import is_app_id

    if not is_app_id(app_id) or len(app_id) > MAX_APP_ID_LENGTH:
        fail(f"{app_id!r} is not an app id (a reverse-domain string such as com.example.app)")
    settings = _settings()

    async def work(session: AsyncSession) -> dict[str, str]:
        released = await release_app_id(session, app_id)
        return {"app_id": released.app_id, "org_id": released.org_id}

    try:
        result = _in_one_transaction(settings, work)
    except ReleaseRefused as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


cli.add_typer(bundle_cli, name="bundle")


def main() -> None:
    cli()
