"""The ``capgo-server`` command line.

Other tooling relies on these names and outputs: ``serve``, ``migrate``, ``create-user``,
``release-app-id`` and the operator's ``list-users``, ``issue-key`` and ``revoke-key``
(:mod:`capgo_server.operator_cli`), which each print exactly one JSON object on stdout. Errors
are one line on stderr, exit code 1.
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from capgo_server import operator_cli
from capgo_server.bundle_cli import bundle_cli
from capgo_server.cli_support import (
    display_url,
    fail,
    in_one_transaction,
    load_settings,
    run_migrations,
    stderr,
)

if TYPE_CHECKING:
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


def _print_version(requested: bool) -> None:
    if requested:
        from capgo_server.serve_banner import server_version

        typer.echo(f"capgo-server {server_version()}")
        raise typer.Exit()


@cli.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


# The same bounds as POST /organization.
MIN_ORG_NAME, MAX_ORG_NAME = 3, 200


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = load_settings()
    run_migrations(settings)
    stderr.print(
        f"database at {display_url(settings)} is up to date", highlight=False, soft_wrap=True
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Apply pending migrations, then serve the API."""
    from capgo_server.serve_banner import banner
    from capgo_server.serving import run

    if not os.environ.get("CAPGO_PUBLIC_URL"):
        # Upload and download URLs are built on the public URL, never on the Host header a
        # client chose; without one, it is the address served (workers inherit it).
        os.environ["CAPGO_PUBLIC_URL"] = served_url(host, port)
    settings = load_settings()
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
    run_migrations(settings)
    typer.echo(banner(settings, has_users=_has_users(settings)), err=True)
    run("capgo_server.app:create_served_app", host=host, port=port, workers=workers)


def _has_users(settings: Settings) -> bool:
    """Whether the (just migrated) database holds a user."""
    from sqlalchemy import select

    from capgo_server.models import User

    async def query(session: AsyncSession) -> bool:
        return await session.scalar(select(User.id).limit(1)) is not None

    return in_one_transaction(settings, query, check_migrations=False)


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

    Prints one JSON object on stdout: user_id, org_id, apikey and invitations.

    The invitations are those kept for this e-mail: now the user's to accept or decline.
    """
    from email_validator import EmailNotValidError, validate_email

    from capgo_server.users.service import UserExistsError, create_user

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        fail(f"{email!r} is not an e-mail address: {exc}")
    if org_name is not None and not MIN_ORG_NAME <= len(org_name.strip()) <= MAX_ORG_NAME:
        fail(f"--org-name must be {MIN_ORG_NAME} to {MAX_ORG_NAME} characters long")
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, object]:
        return (await create_user(session, email, org_name, hashed_key=hashed)).as_json()

    try:
        result = in_one_transaction(settings, work)
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
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, str]:
        released = await release_app_id(session, app_id)
        return {"app_id": released.app_id, "org_id": released.org_id}

    try:
        result = in_one_transaction(settings, work)
    except ReleaseRefused as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


operator_cli.register(cli)
cli.add_typer(bundle_cli, name="bundle")


def main() -> None:
    cli()
