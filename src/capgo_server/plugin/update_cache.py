"""A per-worker cache of what ``/updates`` reads about an app: the app row, its channels, the
bundles those channels offer and (when there are not too many) its device overrides.

Every installed app asks ``/updates`` on every launch, and the answer depends on a handful of rows
that change only when a developer acts. So each worker process keeps an :class:`AppSnapshot` per
app and answers from memory; only a cold or expired app costs database reads.

How a change reaches the answers (the staleness bound):

* **In the worker that made it, at once.** SQLAlchemy session events note every app whose
  ``apps``, ``channels``, ``app_versions`` or ``channel_devices`` rows a session wrote (ORM
  objects, and bulk ``insert``/``update``/``delete`` statements on those tables); when the
  session commits, those apps are dropped from every cache of the process. Nothing has to
  remember to call an invalidation hook, whichever service made the change.
* **In every other worker, within** :data:`TTL_SECONDS` (plus the duration of one reload): a
  snapshot is reloaded once it is that old. Workers share nothing but the database.

A reload that overlaps a commit touching the same app is not kept (a generation counter per app),
so a snapshot read before a change can never outlive it by more than the TTL. Writes that bypass
the ORM session (raw connections, another program) are covered by the TTL alone.

Unknown apps are not cached (an attacker could fill memory with made-up ids); at most
:data:`MAX_APPS` snapshots are kept (the oldest loaded goes first).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.schema import Column

from capgo_server.models import App, Bundle, Channel, ChannelOverride
from capgo_server.plugin.common import PLATFORMS

#: How long a worker answers from a snapshot before reading the app again: the longest a change
#: made through another worker takes to reach this one's answers.
TTL_SECONDS = 1.0
#: Apps with more overrides than this are not cached: their override is read per request.
MAX_CACHED_OVERRIDES = 10_000
#: Snapshots kept per worker.
MAX_APPS = 10_000

#: Tables whose rows the ``/updates`` decision reads.
WATCHED_TABLES = frozenset(
    {
        App.__tablename__,
        Channel.__tablename__,
        Bundle.__tablename__,
        ChannelOverride.__tablename__,
    }
)
_WATCHED_TYPES = (App, Channel, Bundle, ChannelOverride)
#: Deleting an organization deletes its apps in the database (ON DELETE CASCADE).
_CASCADING_TABLES = frozenset({"orgs"})
_TOUCHED = "capgo_update_cache_touched"
#: Stands for "every app": a change whose app could not be told.
EVERY_APP = "*"


@dataclass(frozen=True)
class AppSnapshot:
    """What ``/updates`` needs to know about one app. The ORM objects are detached copies:
    read them, never change them."""

    app: App
    channels_by_name: dict[str, Channel]
    channels_by_id: dict[int, Channel]
    public_by_platform: dict[str, Channel | None]
    bundles: dict[int, Bundle]
    #: device id -> channel id; ``None`` when the app has too many overrides to cache.
    overrides: dict[str, int] | None
    loaded_at: float


async def load_snapshot(session: AsyncSession, app_id: str) -> AppSnapshot | None:
    """Read one app's snapshot (``None``: no such app)."""
    app = await session.get(App, app_id)
    if app is None:
        return None
    channels = list(
        await session.scalars(select(Channel).where(Channel.app_id == app_id).order_by(Channel.id))
    )
    bundle_ids = {c.version for c in channels} | {
        c.rollout_version for c in channels if c.rollout_version is not None
    }
    bundles: dict[int, Bundle] = {}
    if bundle_ids:
        found = await session.scalars(select(Bundle).where(Bundle.id.in_(bundle_ids)))
        bundles = {bundle.id: bundle for bundle in found}
    overrides: dict[str, int] | None = {}
    if app.channel_device_count > MAX_CACHED_OVERRIDES:
        overrides = None
    elif app.channel_device_count > 0:
        rows = await session.execute(
            select(ChannelOverride.device_id, ChannelOverride.channel_id).where(
                ChannelOverride.app_id == app_id
            )
        )
        overrides = {device_id: channel_id for device_id, channel_id in rows}
    public = {
        platform: next((c for c in channels if c.public and getattr(c, platform)), None)
        for platform in PLATFORMS
    }
    return AppSnapshot(
        app=app,
        channels_by_name={c.name: c for c in channels},
        channels_by_id={c.id: c for c in channels},
        public_by_platform=public,
        bundles=bundles,
        overrides=overrides,
        loaded_at=time.monotonic(),
    )


class UpdateCache:
    """The snapshots of one application in one worker process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ttl: float = TTL_SECONDS,
        max_apps: int = MAX_APPS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.ttl = ttl
        self.max_apps = max_apps
        self._snapshots: dict[str, AppSnapshot] = {}
        self._loading: dict[str, asyncio.Future[AppSnapshot | None]] = {}
        # Bumped by every invalidation; a load that saw another value is not kept.
        self._generation: dict[str, int] = {}
        self._epoch = 0
        self.loads = 0
        _CACHES.add(self)

    async def get(self, app_id: str) -> AppSnapshot | None:
        """The app's snapshot, read from the database when cold or older than the TTL."""
        snapshot = self._snapshots.get(app_id)
        if snapshot is not None and time.monotonic() - snapshot.loaded_at < self.ttl:
            return snapshot
        pending = self._loading.get(app_id)
        if pending is not None:  # one reload per app at a time; the others wait for it
            return await asyncio.shield(pending)
        future: asyncio.Future[AppSnapshot | None] = asyncio.get_running_loop().create_future()
        self._loading[app_id] = future
        try:
            snapshot = await self._load(app_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody is warned it was lost
            raise
        else:
            future.set_result(snapshot)
            return snapshot
        finally:
            del self._loading[app_id]

    async def _load(self, app_id: str) -> AppSnapshot | None:
        before = (self._epoch, self._generation.get(app_id, 0))
        self.loads += 1
        async with self._sessionmaker() as session:
            snapshot = await load_snapshot(session, app_id)
        if (self._epoch, self._generation.get(app_id, 0)) != before:
            return snapshot  # changed while we read: answer with it, but do not keep it
        self._snapshots.pop(app_id, None)
        if snapshot is not None:
            if len(self._snapshots) >= self.max_apps:
                del self._snapshots[next(iter(self._snapshots))]
            self._snapshots[app_id] = snapshot
        return snapshot

    def invalidate(self, app_ids: set[str]) -> None:
        """Forget these apps (:data:`EVERY_APP` among them: forget everything)."""
        if EVERY_APP in app_ids:
            self._epoch += 1
            self._snapshots.clear()
            self._generation.clear()
            return
        for app_id in app_ids:
            self._snapshots.pop(app_id, None)
            self._generation[app_id] = self._generation.get(app_id, 0) + 1
        if len(self._generation) > 4 * self.max_apps:
            self._epoch += 1
            self._generation.clear()


_CACHES: weakref.WeakSet[UpdateCache] = weakref.WeakSet()


def invalidate_everywhere(app_ids: set[str]) -> None:
    """Drop these apps from every cache of this process."""
    for cache in list(_CACHES):
        cache.invalidate(app_ids)


# --- noticing changes ----------------------------------------------------------------------


def _touched(session: Session) -> set[str]:
    touched: set[str] = session.info.setdefault(_TOUCHED, set())
    return touched


def _app_id_of(instance: object) -> str | None:
    app_id = getattr(instance, "app_id", None)
    return app_id if isinstance(app_id, str) else None


def _note_flush(session: Session, _flush_context: Any) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, _WATCHED_TYPES):
            _touched(session).add(_app_id_of(instance) or EVERY_APP)
        elif getattr(instance, "__tablename__", None) in _CASCADING_TABLES:
            _touched(session).add(EVERY_APP)


def _statement_app_id(statement: Any) -> str | None:
    """The app a bulk statement is limited to by ``app_id = <value>``, if it says so."""
    where = getattr(statement, "whereclause", None)
    if where is None:
        return None
    for element in visitors.iterate(where):
        if (
            isinstance(element, BinaryExpression)
            and isinstance(element.left, Column)
            and element.left.name == "app_id"
            and isinstance(element.right, BindParameter)
            and element.operator.__name__ == "eq"
            and isinstance(element.right.value, str)
        ):
            return element.right.value
    return None


def _note_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name in WATCHED_TABLES:
        touched = _touched(state.session)
        touched.add((None if state.is_insert else _statement_app_id(state.statement)) or EVERY_APP)
    elif name in _CASCADING_TABLES:
        _touched(state.session).add(EVERY_APP)


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint: the changes are not visible yet
        return
    touched = session.info.pop(_TOUCHED, None)
    if touched:
        invalidate_everywhere(touched)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (``after_commit`` already took the
    # changes of one that committed): nothing it wrote is visible, forget it. A rolled-back
    # savepoint keeps its notes; a needless invalidation costs one reload.
    if transaction.parent is None:
        session.info.pop(_TOUCHED, None)


event.listen(Session, "after_flush", _note_flush)
event.listen(Session, "do_orm_execute", _note_statement)
event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_transaction_end", _after_transaction_end)
