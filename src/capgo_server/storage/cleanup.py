"""Removing the files of deleted bundles and apps.

Deletions commit first; the files go afterwards, as a background task. A storage failure then
leaves an orphan file (logged) — never a live bundle whose file is gone, which devices would be
offered and fail to download.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from capgo_server.storage.base import BundleStore

logger = logging.getLogger(__name__)


async def remove_stored(
    store: BundleStore, *, paths: Iterable[str] = (), prefixes: Iterable[str] = ()
) -> None:
    """Remove ``paths`` and everything under ``prefixes``; failures are logged, not raised."""
    for path in paths:
        try:
            await store.delete(path)
        except Exception:  # one unreachable file must not keep the others
            logger.exception("could not remove the stored file %s", path)
    for prefix in prefixes:
        try:
            await store.delete_prefix(prefix)
        except Exception:
            logger.exception("could not remove the stored files under %s", prefix)
