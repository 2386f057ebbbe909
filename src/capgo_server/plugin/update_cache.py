"""A per-worker cache of what ``/updates`` reads about an app: the app row, its channels, the
bundles those channels offer and (when there are not too many) its device overrides.

Every installed app asks ``/updates`` on every launch, and the answer depends on a handful of rows
that change only when a developer (or a device choosing its channel) acts. So each worker process
keeps an :class:`AppSnapshot` per app and answers from memory: a warm request reads nothing from
the database.

How a change reaches the answers:

* **Noticing it.** SQLAlchemy session events note every app whose ``apps``, ``channels``,
  ``app_versions`` or ``channel_devices`` rows a session writes (ORM objects, and bulk
  ``insert``/``update``/``delete`` statements on those tables, whose apps are read from the
  statement or, failing that, selected with its WHERE clause). Nothing has to remember to call
  a hook, whichever service makes the change.
* **Stamping it.** In the same transaction, those apps' ``apps.updated_at`` is set to now: the
  app's version stamp, which every worker can see once the change commits.
* **In the worker that made it, at once.** When the session commits, the apps are dropped from
  every cache of the process.
* **In every other worker, within** :data:`POLL_SECONDS` (1 s) plus one query: once a second
  each worker asks ``SELECT app_id, updated_at FROM apps WHERE updated_at >= <last poll - slack>``
  (and the number of apps, which catches apps created or deleted) and drops the snapshots whose
  stamp moved. Workers share nothing but the database; the cost is two small queries per second
  per worker, whatever the traffic.
* **Whatever else happens** (a raw SQL change, another program): no snapshot is used for more
  than :data:`MAX_AGE_SECONDS`. A snapshot is reloaded in the background once it is between
  75 and 95 % of that age (spread by app), while requests keep being answered from it; only one
  that reaches the full age is reloaded before the answer. Apps loaded together (a worker's
  first seconds) would otherwise all expire together, and their reloads stall every request
  for that second: flat out on SQLite, p99 went from 27 to 72 ms over a 70-second run.

A load that overlaps an invalidation of the same app is not kept (a generation counter per
app), so a snapshot read before a change cannot outlive it.

Unknown apps are not cached (an attacker could fill memory with made-up ids); at most
:data:`MAX_APPS` snapshots are kept (the oldest loaded goes first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.schema import Column

from capgo_server.clock import utcnow
from capgo_server.models import App, Bundle, Channel, ChannelOverride
from capgo_server.plugin.common import PLATFORMS

logger = logging.getLogger("capgo_server.plugin")

#: How often a worker looks for apps changed by other workers: the longest a change made
#: through another worker takes to reach this one's answers (plus one query).
POLL_SECONDS = 1.0
#: Changed stamps are looked for this far before the previous poll, so a transaction that
#: commits a while after it stamped (or a worker whose clock is a little behind) is still seen.
POLL_SLACK = timedelta(seconds=30)
#: How long the request that starts a poll waits for it before answering from memory.
POLL_WAIT_SECONDS = 0.1
#: No snapshot is used longer than this, whatever the polls say.
MAX_AGE_SECONDS = 60.0
#: The share of :data:`MAX_AGE_SECONDS` after which a snapshot is reloaded in the background:
#: from the first value to the second, spread by app.
REFRESH_FROM, REFRESH_TO = 0.75, 0.95
#: Apps with more overrides than this are not cached: their override is read per request.
MAX_CACHED_OVERRIDES = 10_000
#: Apps with more bundles than this keep no bundle names in memory (``/stats`` then asks the
#: database which bundle a device names).
MAX_CACHED_BUNDLE_NAMES = 5_000
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
_STAMPED = "capgo_update_cache_stamped"
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
    #: bundle name -> (id, deleted), every bundle of the app (``/stats``); ``None``: too many.
    bundle_names: dict[str, tuple[int, bool]] | None
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
    names = (
        await session.execute(
            select(Bundle.name, Bundle.id, Bundle.deleted)
            .where(Bundle.app_id == app_id)
            .order_by(Bundle.id)
            .limit(MAX_CACHED_BUNDLE_NAMES + 1)
        )
    ).all()
    bundle_names: dict[str, tuple[int, bool]] | None = None
    if len(names) <= MAX_CACHED_BUNDLE_NAMES:
        bundle_names = {}
        for name, bundle_id, deleted in names:
            bundle_names.setdefault(name, (bundle_id, deleted))
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
        bundle_names=bundle_names,
        loaded_at=time.monotonic(),
    )


class UpdateCache:
    """The snapshots of one application in one worker process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        poll_seconds: float = POLL_SECONDS,
        max_age: float = MAX_AGE_SECONDS,
        max_apps: int = MAX_APPS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.poll_seconds = poll_seconds
        self.max_age = max_age
        self.max_apps = max_apps
        self._snapshots: dict[str, AppSnapshot] = {}
        self._loading: dict[str, asyncio.Future[AppSnapshot | None]] = {}
        self._refreshes: set[asyncio.Task[None]] = set()
        # Bumped by every invalidation; a load that saw another value is not kept.
        self._generation: dict[str, int] = {}
        self._epoch = 0
        self._next_poll = time.monotonic() + poll_seconds
        self._polled_at: datetime | None = None
        self._app_count: int | None = None
        self.loads = 0
        self.polls = 0
        _CACHES.add(self)

    async def get(self, app_id: str) -> AppSnapshot | None:
        """The app's snapshot, read from the database when cold, changed or too old."""
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self.poll_seconds  # one poll at a time
            await self._poll_in_background()
        snapshot = self._snapshots.get(app_id)
        if snapshot is not None:
            age = now - snapshot.loaded_at
            if age < self.max_age:
                if age >= self.refresh_age(app_id) and app_id not in self._loading:
                    self._refresh_in_background(app_id)
                return snapshot
        pending = self._loading.get(app_id)
        if pending is not None:  # one load per app at a time; the others wait for it
            return await asyncio.shield(pending)
        return await self._fill(app_id, self._begin_load(app_id))

    def refresh_age(self, app_id: str) -> float:
        """The age at which ``app_id``'s snapshot is reloaded in the background: from
        :data:`REFRESH_FROM` to :data:`REFRESH_TO` of :attr:`max_age`, spread by app (the
        process's string hash)."""
        spread = (hash(app_id) % 1024) / 1024
        return self.max_age * (REFRESH_FROM + (REFRESH_TO - REFRESH_FROM) * spread)

    def _refresh_in_background(self, app_id: str) -> None:
        # Registered before the task first runs: the requests until then wait for this load
        # instead of starting another.
        loading = self._begin_load(app_id)

        async def refresh() -> None:
            try:
                await self._fill(app_id, loading)
            except Exception:  # the snapshot in hand stays usable until it is too old
                logger.warning("update cache: could not reload %s", app_id, exc_info=True)

        self._in_background(refresh())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """``work`` as a task that :meth:`close` waits for (a reload, a poll)."""
        task = asyncio.get_running_loop().create_task(work)
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)
        return task

    def _begin_load(self, app_id: str) -> asyncio.Future[AppSnapshot | None]:
        """Announce a load of the app: requests that need it meanwhile wait for this future."""
        future: asyncio.Future[AppSnapshot | None] = asyncio.get_running_loop().create_future()
        self._loading[app_id] = future
        return future

    async def _fill(
        self, app_id: str, loading: asyncio.Future[AppSnapshot | None]
    ) -> AppSnapshot | None:
        """Load the app's snapshot and hand it to the requests waiting for ``loading``."""
        try:
            snapshot = await self._load(app_id)
        except BaseException as exc:
            loading.set_exception(exc)
            loading.exception()  # retrieved: waiters get it, nobody is warned it was lost
            raise
        else:
            loading.set_result(snapshot)
            return snapshot
        finally:
            if self._loading.get(app_id) is loading:
                del self._loading[app_id]

    async def close(self) -> None:
        """Stop the background reloads (the lifespan's exit, before the engine goes)."""
        for task in list(self._refreshes):
            task.cancel()
        await asyncio.gather(*self._refreshes, return_exceptions=True)
        for loading in self._loading.values():  # a reload cancelled before it started
            loading.cancel()
        self._loading.clear()

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

    async def _poll_in_background(self) -> None:
        """Start a poll, and wait for it at most :data:`POLL_WAIT_SECONDS`.

        A poll takes a millisecond or two, so the request that starts it normally answers with
        what it found. But it needs a database connection, and when the pool has none free it
        would wait for one (``CAPGO_DB_POOL_TIMEOUT_SECONDS``): the request then answers from the
        snapshots it has while the poll goes on without it.
        """
        await asyncio.wait({self._in_background(self._poll())}, timeout=POLL_WAIT_SECONDS)

    async def _poll(self) -> None:
        """Drop the snapshots of apps other workers changed (their stamp moved), and all of
        them when apps were created or deleted."""
        started = utcnow()
        since = (self._polled_at or started) - POLL_SLACK
        self.polls += 1
        try:
            async with self._sessionmaker() as session:
                count = await session.scalar(select(func.count()).select_from(App))
                changed = (
                    await session.execute(
                        select(App.app_id, App.updated_at).where(App.updated_at >= since)
                    )
                ).all()
        except Exception:
            # The database is unreachable, so nothing can change in it either: keep answering
            # from memory (snapshots still expire after MAX_AGE_SECONDS); the next poll retries.
            logger.warning("update cache: could not poll for changed apps", exc_info=True)
            return
        if self._app_count is not None and count != self._app_count:
            self.invalidate({EVERY_APP})
        self._app_count = count
        moved = {
            app_id
            for app_id, stamp in changed
            if app_id in self._snapshots and self._snapshots[app_id].app.updated_at != stamp
        }
        if moved:
            self.invalidate(moved)
        self._polled_at = started

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
    stamped: set[str] = session.info.setdefault(_STAMPED, set())
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, _WATCHED_TYPES):
            app_id = _app_id_of(instance) or EVERY_APP
            _touched(session).add(app_id)
            if isinstance(instance, App) and instance not in session.deleted:
                stamped.add(app_id)  # its own updated_at moves with this flush
        elif getattr(instance, "__tablename__", None) in _CASCADING_TABLES:
            _touched(session).add(EVERY_APP)


def _stamp(session: Session) -> None:
    """Move ``updated_at`` of the apps this transaction changed, so other workers see it."""
    touched = session.info.get(_TOUCHED)
    if not touched:
        return
    stamped: set[str] = session.info.setdefault(_STAMPED, set())
    todo = sorted(touched - stamped - {EVERY_APP})
    if not todo:
        return
    stamped.update(todo)
    table = cast(Table, App.__table__)
    session.connection().execute(
        update(table).where(table.c.app_id.in_(todo)).values(updated_at=utcnow())
    )


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


def _statement_app_ids(state: ORMExecuteState, table: Any) -> set[str]:
    """The apps a bulk statement on a watched table writes (empty: could not tell)."""
    statement: Any = state.statement
    if state.is_insert:
        parameters: Any = state.parameters
        rows: list[Any] = parameters if isinstance(parameters, list) else [parameters]
        found = {row["app_id"] for row in rows if row and isinstance(row.get("app_id"), str)}
        with contextlib.suppress(Exception):
            value = statement.compile().params.get("app_id")
            if isinstance(value, str):
                found.add(value)
        return found
    single = _statement_app_id(statement)
    if single is not None:
        return {single}
    if statement.whereclause is None or "app_id" not in table.c:
        return set()
    # Ask the database which apps the statement is about to touch.
    selected = state.session.execute(select(table.c.app_id).where(statement.whereclause).distinct())
    return {app_id for (app_id,) in selected}


def _note_statement(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name in WATCHED_TABLES:
        _touched(state.session).update(_statement_app_ids(state, table) or {EVERY_APP})
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
        session.info.pop(_STAMPED, None)


event.listen(Session, "after_flush", _note_flush)
event.listen(Session, "after_flush_postexec", lambda session, _: _stamp(session))
event.listen(Session, "before_commit", _stamp)
event.listen(Session, "do_orm_execute", _note_statement)
event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_transaction_end", _after_transaction_end)
