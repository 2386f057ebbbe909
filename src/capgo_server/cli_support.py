"""What every database command of ``capgo-server`` shares: settings from the environment,
migrations, one transaction on the migrated database, and the one-line error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncSession

    from capgo_server.settings import Settings

T = TypeVar("T")
stderr = Console(stderr=True)


def fail(message: str) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def load_settings() -> Settings:
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
    tighten_private_folders(settings)
    return settings


def tighten_private_folders(settings: Settings) -> None:
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


def run_migrations(settings: Settings) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        asyncio.run(_migrate(settings.resolved_database_url))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot migrate {display_url(settings)}: {first_line(exc)}")


def display_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def in_one_transaction(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    check_migrations: bool = True,
) -> T:
    """``work`` in one transaction on the migrated database; an unreachable one is the
    command's one-line error. What ``work`` raises on purpose goes to the caller.

    ``check_migrations=False`` when the caller has just migrated (``serve``): the check loads
    every migration script, which costs seconds of start-up on a busy machine."""
    from sqlalchemy.exc import SQLAlchemyError

    from capgo_server.db.engine import make_engine, make_sessionmaker
    from capgo_server.db.migrate import pending_migrations

    async def run() -> T:
        engine = make_engine(settings.resolved_database_url)
        try:
            if check_migrations and await pending_migrations(engine):
                fail("the database is not migrated: run `capgo-server migrate` first")
            async with make_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot reach the database at {display_url(settings)}: {first_line(exc)}")


def email_argument(email: str) -> str:
    """``email`` normalized as ``create-user`` stores it, or the command's one-line error."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        fail(f"{email!r} is not an e-mail address: {exc}")


def print_json(result: object) -> None:
    """A command's one JSON object, on one line of stdout."""
    typer.echo(json.dumps(result))
