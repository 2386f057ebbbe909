"""The ``capgo-server`` command line.

Other tooling relies on these names and outputs: ``serve``, ``migrate`` and ``create-user``
(which prints exactly one JSON object on stdout). Errors are one line on stderr, exit code 1.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

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


def fail(message: str) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _settings() -> Settings:
    settings = Settings()
    if settings.database_url is None:
        settings.ensure_data_dir()
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
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = _settings()
    _run_migrations(settings)
    stderr.print(f"database at {_display_url(settings)} is up to date", highlight=False)


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
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        fail(f"{email!r} is not an e-mail address")
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
    # ``bundle upload|list|delete`` are API clients; they live in their own module.
    try:
        from capgo_server.bundle_cli import bundle_cli
    except ImportError:  # pragma: no cover - module being written
        return
    cli.add_typer(bundle_cli, name="bundle")


_register_subcommands()


def main() -> None:
    cli()
