"""The ``capgo-server`` command line.

Other tooling relies on these names and outputs: ``serve``, ``migrate`` and ``create-user``
(which prints exactly one JSON object on stdout). Errors are one line on stderr, exit code 1.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Annotated, NoReturn

import typer
from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from capgo_server.db.engine import make_engine, make_sessionmaker
from capgo_server.db.migrate import pending_migrations, upgrade_to_head
from capgo_server.settings import Settings
from capgo_server.users.service import UserExistsError, create_user

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
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _settings() -> Settings:
    """The settings from the environment, or one clear line naming what is wrong."""
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
    return settings


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


def _run_migrations(settings: Settings) -> None:
    try:
        asyncio.run(_migrate(settings.resolved_database_url))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot migrate {_display_url(settings)}: {_first_line(exc)}")


def _display_url(settings: Settings) -> str:
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    import uvicorn

    settings = _settings()
    try:
        settings.resolved_secret()
    except RuntimeError as exc:
        fail(str(exc))
    _run_migrations(settings)
    uvicorn.run(
        "capgo_server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@cli.command("create-user")
def create_user_command(
    email: Annotated[str, typer.Argument(help="The new user's e-mail address.")],
    org_name: Annotated[str | None, typer.Option(help="Name of the user's organization.")] = None,
    hashed: Annotated[bool, typer.Option(help="Store only a SHA-256 of the API key.")] = False,
) -> None:
    """Create a user, an organization they own and an API key of mode `all`.

    Prints {"user_id": ..., "org_id": ..., "apikey": ...} on stdout.
    """
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        fail(f"{email!r} is not an e-mail address: {exc}")
    if org_name is not None and not MIN_ORG_NAME <= len(org_name.strip()) <= MAX_ORG_NAME:
        fail(f"--org-name must be {MIN_ORG_NAME} to {MAX_ORG_NAME} characters long")
    settings = _settings()

    async def run() -> dict[str, str]:
        engine = make_engine(settings.resolved_database_url)
        try:
            if await pending_migrations(engine):
                fail("the database is not migrated: run `capgo-server migrate` first")
            async with make_sessionmaker(engine)() as session, session.begin():
                account = await create_user(session, email, org_name, hashed_key=hashed)
            return {"user_id": account.user_id, "org_id": account.org_id, "apikey": account.apikey}
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(run())
    except UserExistsError as exc:
        fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot reach the database at {_display_url(settings)}: {_first_line(exc)}")
    typer.echo(json.dumps(result))


def _register_subcommands() -> None:
    # ``bundle upload|list|delete`` are API clients, kept in their own module.
    try:
        module = importlib.import_module("capgo_server.bundle_cli")
    except ModuleNotFoundError:  # pragma: no cover - module being written
        return
    bundle_cli: typer.Typer = module.bundle_cli
    cli.add_typer(bundle_cli, name="bundle")


_register_subcommands()


def main() -> None:
    cli()
