"""App id reservations: an app id belongs for good to the organization that created it.

House decision: devices in the field keep calling ``/updates`` with the id of a deleted app,
so whoever took the id next would serve them its bundles. The id is reserved when its app is
first created and the reservation outlives the app and its organization; only an operator
releases it (``capgo-server release-app-id``). ``apps`` refers to its reservation by
``(app_id, owner_org)``, so the database refuses an app outside its reservation and a release
while the app exists, whatever requests race.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.errors import ApiError
from capgo_server.models import App, AppIdReservation


class ReleaseRefused(Exception):
    """The reservation cannot be released; the message says why, for the operator."""


async def reserve_app_id(
    session: AsyncSession, app_id: str, org_id: str, *, refused: ApiError
) -> None:
    """Make sure ``app_id`` is reserved for ``org_id`` before its app is inserted.

    Raises ``refused`` when another organization holds the id, or reserves it concurrently:
    the caller passes the answer it gives for an id a live app holds, so a reservation cannot
    be told apart from a live app of another tenant.
    """
    holder = await session.scalar(
        select(AppIdReservation.org_id).where(AppIdReservation.app_id == app_id)
    )
    if holder is not None:
        if holder != org_id:
            raise refused
        return
    session.add(AppIdReservation(app_id=app_id, org_id=org_id))
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request reserved it first
        raise refused from exc


async def release_app_id(session: AsyncSession, app_id: str) -> AppIdReservation:
    """Delete the reservation of ``app_id`` so any organization may create it; returns it.

    Refused when the id is not reserved or an app holds it (delete the app first).
    """
    reservation = await session.get(AppIdReservation, app_id)
    if reservation is None:
        raise ReleaseRefused(f"app id {app_id} is not reserved")
    in_use = ReleaseRefused(
        f"app id {app_id} belongs to a live app of organization {reservation.org_id}:"
        " delete the app first"
    )
    if await session.get(App, app_id) is not None:
        raise in_use
    await session.delete(reservation)
    try:
        await session.flush()
    except IntegrityError as exc:  # the organization created the app meanwhile
        raise in_use from exc
    return reservation
