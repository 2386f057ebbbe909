"""``capgo-server list-users``, ``issue-key`` and ``revoke-key``: the operator's way back from a
lost key (:mod:`capgo_server.users.operator`). Each prints one JSON object on stdout; errors are
one line on stderr, exit code 1, and nothing is written."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from capgo_server.cli_support import email_argument, fail, in_one_transaction, load_settings
from capgo_server.cli_support import print_json as print_result

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncSession

_KEY_ID = re.compile(r"[0-9]{1,18}")  # fullmatch: ASCII digits only, as list-users shows ids
#: The name of a key ``issue-key`` makes without ``--name``.
DEFAULT_KEY_NAME = "issued by capgo-server issue-key"
# Hints for the service's refusals that name the request body's fields, not the options.
_OPTION_HINTS = {
    "invalid_expiration_date": "--expires-at takes an ISO 8601 timestamp in the future and "
    "before the year 10000, e.g. 2027-01-31T00:00:00Z",
    "org_not_found": "every --org must be an organization id of theirs (see list-users)",
    "hashed_key_required": "add --hashed",
    "expiration_required": "add --expires-in-days or --expires-at",
}


def _run(work: Callable[[AsyncSession], Awaitable[Any]], refusal: str) -> Any:
    """``work`` in one transaction; a refusal of the operator or of the API rules is the
    command's one-line error, prefixed with ``refusal``."""
    from capgo_server.errors import ApiError
    from capgo_server.users.operator import OperatorError

    settings = load_settings()
    try:
        return in_one_transaction(settings, work)
    except OperatorError as exc:
        fail(f"{refusal}: {exc}")
    except ApiError as exc:
        hint = _OPTION_HINTS.get(exc.code)
        details = ", ".join(f"{name} {value}" for name, value in exc.more_info.items())
        fail(
            f"{refusal}: {exc.message}"
            + (f" ({details})" if details else "")
            + (f": {hint}" if hint else "")
        )


def list_users_command() -> None:
    """List every user, with their organizations and API keys (never a key's value).

    Prints {"users": [{"id", "email", "created_at", "organizations": [{"id", "name", "role"}],
    "key_count", "keys": [{"id", "name", "mode", "expires_at"}]}]} on stdout.
    """
    from capgo_server.users.operator import list_users

    print_result({"users": _run(list_users, "cannot list users")})


def issue_key_command(
    email: Annotated[str, typer.Argument(help="The e-mail of an existing user.")],
    mode: Annotated[
        str, typer.Option(help="What the key may do: all, write, upload or read.")
    ] = "all",
    orgs: Annotated[
        list[str] | None,
        typer.Option(
            "--org",
            metavar="ORG_ID",
            help="Limit the key to this organization (repeat for several).",
        ),
    ] = None,
    apps: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            metavar="APP_ID",
            help="Limit the key to this app, e.g. com.example.app (repeat for several).",
        ),
    ] = None,
    expires_in_days: Annotated[
        str | None, typer.Option(metavar="DAYS", help="The key expires this many days from now.")
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(
            metavar="TIMESTAMP", help="The key expires then (ISO 8601, e.g. 2027-01-31T00:00:00Z)."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="The key's name.")] = DEFAULT_KEY_NAME,
    hashed: Annotated[
        bool, typer.Option(help="Store only a SHA-256 of the key (it is shown only now).")
    ] = False,
) -> None:
    """Issue a new API key to an existing user: the way back from a lost key.

    The same rules as POST /apikey apply: limited organizations and apps must be the user's,
    and an organization's key policies (required expiry, hashed keys) are enforced.

    Prints {"user_id", "key_id", "name", "apikey", "mode", "hashed", "limited_to_orgs",
    "limited_to_apps", "expires_at", "refused_by_orgs"} on stdout: the last lists the user's
    organizations whose policies will refuse this key ([{"org_id", "reason"}]), e.g. one that
    requires keys to expire, given a key without --expires-in-days.
    """
    from capgo_server.users.operator import KeyRequest, issue_key

    email = email_argument(email)
    request = KeyRequest(
        mode=mode,
        org_ids=list(dict.fromkeys(orgs or [])),
        app_ids=list(dict.fromkeys(apps or [])),
        expires_at=_expiry(expires_in_days, expires_at),
        name=name,
        hashed=hashed,
    )

    async def work(session: AsyncSession) -> dict[str, Any]:
        return await issue_key(session, email, request)

    print_result(_run(work, f"cannot issue a key to {email}"))


def _expiry(in_days: str | None, at: str | None) -> str | None:
    """The requested expiry as the API's ``expires_at`` (the service judges it)."""
    from capgo_server.clock import utcnow

    if in_days is not None and at is not None:
        fail("give --expires-in-days or --expires-at, not both")
    if in_days is None:
        return at
    try:
        days = int(in_days)
    except ValueError:
        fail(f"--expires-in-days takes a whole number of days, not {in_days!r}")
    if days < 1:
        fail("--expires-in-days must be at least 1")
    try:
        return (utcnow() + timedelta(days=days)).isoformat()
    except OverflowError:
        fail(f"--expires-in-days {days} lies beyond the year 9999")


def revoke_key_command(
    key_id: Annotated[
        str | None, typer.Option("--id", metavar="KEY_ID", help="Revoke this key (its id).")
    ] = None,
    email: Annotated[str | None, typer.Option(help="With --all: the user's e-mail.")] = None,
    every_key: Annotated[
        bool, typer.Option("--all", help="Revoke every key of the user named by --email.")
    ] = False,
) -> None:
    """Revoke an API key by its id, or every key of a user (--email E --all).

    A revoked key is refused by the running server from its next request.

    Prints the revoked keys' ids on stdout, e.g. {"revoked": [3, 4]}.
    """
    from capgo_server.users.operator import revoke_all_keys, revoke_key

    if key_id is not None:
        if email is not None or every_key:
            fail("give either --id or --email with --all, not both")
        if not _KEY_ID.fullmatch(key_id):
            fail(f"--id takes a key id (a number, see list-users), not {key_id!r}")
        number = int(key_id)

        async def revoke_one(session: AsyncSession) -> list[int]:
            return await revoke_key(session, number)

        print_result({"revoked": _run(revoke_one, f"cannot revoke key {number}")})
        return
    if email is None or not every_key:
        fail("give --id KEY_ID, or --email EMAIL --all to revoke every key of a user")
    address = email_argument(email)

    async def revoke_every(session: AsyncSession) -> list[int]:
        return await revoke_all_keys(session, address)

    print_result({"revoked": _run(revoke_every, f"cannot revoke the keys of {address}")})


def register(cli: typer.Typer) -> None:
    cli.command("list-users")(list_users_command)
    cli.command("issue-key")(issue_key_command)
    cli.command("revoke-key")(revoke_key_command)
