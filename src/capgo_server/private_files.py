"""The server's files are its user's alone: owner-only modes (0600 files, 0700 folders).

The data directory holds secrets: the SQLite database (every API key not stored hashed) with
its ``-wal``, ``-shm`` and ``-journal`` companions, ``.secret`` (signs download URLs), and the
bundles and upload parts of the local store. Three layers keep them private:

* the server commands (``serve``, ``migrate``, ``create-user``) set the umask to 077, so
  whatever the process creates (uvicorn's workers inherit it) is owner-only;
* the code that creates them asks for owner-only modes itself (the SQLite file before SQLite
  opens it, ``.secret``, the local store's files and folders), so an app embedded or served by
  plain uvicorn under a looser umask keeps them private too. SQLite gives its companion files
  the database file's mode;
* an install made before this is tightened when a server command starts
  (:func:`tighten_tree`): group and other permissions are removed, nothing is ever loosened.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
FOLDER_MODE = 0o700
#: The files SQLite keeps beside a database (they hold its pages, hence its secrets).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def restrict_umask() -> None:
    """Owner-only modes for everything this process creates from now on (process-wide: only
    the server commands call it)."""
    os.umask(PRIVATE_UMASK)


def tighten(path: Path) -> bool:
    """Remove group and other permissions from ``path`` (not following a symbolic link);
    ``True`` if it had any. A missing path is left alone."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(mode) or not mode & 0o077:
        return False
    path.chmod(stat.S_IMODE(mode) & ~0o077)
    return True


def tighten_tree(root: Path) -> int:
    """:func:`tighten` ``root`` and everything under it (symbolic links are neither changed
    nor followed); how many paths were tightened."""
    if not root.is_dir():
        return 0
    tightened = int(tighten(root))
    for folder, folders, files in os.walk(root):
        for name in (*folders, *files):
            tightened += tighten(Path(folder, name))
    return tightened


def open_private_file(path: Path) -> int:
    """A new file at ``path``, created owner-only (``FileExistsError`` if it exists); its
    descriptor, open for writing."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)


def publish_private_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it exists, owner-only from the first byte; ``False``
    if another process got there first. Readers never see it half-written: it is written
    beside ``path`` and linked into place (which, unlike a rename, never replaces a file)."""
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}.draft")
    with os.fdopen(open_private_file(draft), "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def prepare_sqlite_file(database: str) -> None:
    """Create the SQLite database file ``database`` owner-only before SQLite does (SQLite would
    follow the umask, then give its companion files the same mode), and tighten an existing
    one and its companions. Skips in-memory and URI databases, and a missing folder (SQLite
    reports that)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return
    try:
        os.close(open_private_file(path))  # an empty file is an empty SQLite database
    except FileExistsError:
        pass
    except OSError:
        return  # a read-only folder, say: SQLite's own error will say so
    for companion in ("", *SQLITE_COMPANIONS):
        try:
            tighten(Path(f"{path}{companion}"))
        except OSError as exc:  # another user's file: the server still runs, and says so
            logger.warning("cannot restrict %s%s to its owner: %s", path, companion, exc)
