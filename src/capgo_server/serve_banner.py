"""The few lines ``capgo-server serve`` prints before uvicorn's: what this server is and where
its state lives, the address devices will be given, and the next step on an empty database.

Nothing secret is printed: the database URL's password (and any password-like query parameter)
is masked, and the bundle store URL loses any credentials it carries (its query values too).
"""

from __future__ import annotations

import os
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from capgo_server.settings import Settings

#: Query parameters of a database URL that carry a credential (libpq and asyncpg names).
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "sslpassword", "secret", "token"})
MASK = "***"


def server_version() -> str:
    """The installed distribution's version (what ``pip`` installed, not a copy in the code)."""
    try:
        return version("capgo-server")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def masked_database_url(url: str) -> str:
    """``url`` with its password, and password-like query parameters, replaced by ``***``."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    if not parsed.query:
        return shown
    # Written by hand: SQLAlchemy would percent-encode the mask.
    pairs = [
        f"{quote(key)}={MASK if key.lower() in _SECRET_QUERY_KEYS else quote(value)}"
        for key, values in parsed.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    ]
    return f"{shown}?{'&'.join(pairs)}"


def storage_location(settings: Settings) -> str:
    """Where bundles are kept: a local folder (absolute), or the object store URL without
    credentials (and its endpoint when not AWS)."""
    url = settings.storage_url
    if not url:
        return f"{(settings.data_dir / 'bundles').resolve()} (local folder)"
    if url.startswith("file://"):
        return f"{Path(url.removeprefix('file://')).resolve()} (local folder)"
    shown = _without_credentials(url)
    if settings.s3_endpoint_url:
        shown += f" (endpoint {_without_credentials(settings.s3_endpoint_url)})"
    return shown


def _without_credentials(url: str) -> str:
    """``url`` without userinfo or fragment, its query values masked: a store URL's query may
    carry a token (``X-Amz-Security-Token``, ``token``...) and its names are enough to show."""
    parts = urlsplit(url)
    query = "&".join(
        f"{name}={MASK}" if sep else MASK
        for name, sep, _ in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit(
        parts._replace(netloc=parts.netloc.rpartition("@")[2], query=query, fragment="")
    )


def invoked_command() -> str:
    """How the operator started this program, to show a command they can paste: the path they
    typed (``.venv/bin/capgo-server``), or ``python -m capgo_server``."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "capgo-server"
    if Path(program).name == "__main__.py":
        return f"{shlex.quote(sys.executable)} -m capgo_server"
    return shlex.quote(program)


def banner(settings: Settings, *, has_users: bool) -> str:
    """The banner's text (several lines, no trailing newline)."""
    public_url = settings.public_url.rstrip("/")
    lines = [
        f"capgo-server {server_version()}",
        f"  database:    {masked_database_url(settings.resolved_database_url)}",
        f"  data dir:    {settings.data_dir.resolve()}",
        f"  bundles:     {storage_location(settings)}",
        f"  public URL:  {public_url} (the address devices are given)",
        f"  API docs:    {public_url}/docs",
    ]
    if not has_users:
        lines += _first_user_hint()
    return "\n".join(lines)


def _first_user_hint() -> list[str]:
    """The ``create-user`` command, run from the same folder: with the same database setting,
    or another shell would create the user in another database. The database URL is not
    repeated (it holds a password the operator has in their environment already)."""
    command = f'{invoked_command()} create-user you@example.com --org-name "My company"'
    hint = ["  no user yet: create the first one (it prints their API key) with"]
    if os.environ.get("CAPGO_DATABASE_URL"):
        return [*hint, f"    {command}", "    (with the same CAPGO_DATABASE_URL set)"]
    if data_dir := os.environ.get("CAPGO_DATA_DIR"):
        command = f"CAPGO_DATA_DIR={shlex.quote(data_dir)} {command}"
    return [*hint, f"    {command}"]
