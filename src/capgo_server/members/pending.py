"""Invitations to an e-mail that has no user yet (Capgo's ``tmp_users``).

``POST /organization/members`` keeps them; ``GET /organization/members`` shows them as
``invite_<role>`` with ``is_tmp: true``; ``DELETE /organization/members`` with the e-mail
cancels one. They expire :data:`INVITATION_LIFETIME` after they were made (Capgo's rule) and
are then neither shown nor granted. ``capgo-server create-user`` turns the unexpired ones for
the new user's e-mail into ``invite_<role>`` memberships (:func:`grant_pending_invitations`),
which the user accepts or declines like an invitation of an existing user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server import audit
from capgo_server.auth.roles import INVITABLE_ROLES, Role
from capgo_server.clock import utcnow
from capgo_server.db.locks import lock_for_update
from capgo_server.errors import ApiError
from capgo_server.members.schemas import MemberOut
from capgo_server.models import Membership, PendingInvitation, User

#: How long an invitation to a non-user waits for that user (Capgo's ``get_org_members``).
INVITATION_LIFETIME = timedelta(days=7)

#: Pending invitations an organization may hold at once, of users and non-users together.
#: Inviting e-mails that have no user costs a row each and needs no one's consent: without a
#: bound, one admin key could fill the database. 100 is far beyond a real team's backlog of
#: unanswered invitations; withdrawing or expiring ones frees room.
MAX_PENDING_INVITATIONS_PER_ORG = 100


#: First key of the PostgreSQL advisory locks taken per e-mail (the second is its hash), so that
#: they cannot collide with advisory locks taken for anything else.
_EMAIL_LOCK_CLASS = 0x696E76  # "inv"


async def lock_email(session: AsyncSession, email: str) -> None:
    """Until the transaction ends, be the only one inviting or creating a user ``email``.

    Without it, an invitation and ``create-user`` of the same e-mail running at once could each
    miss the other's uncommitted row: the invitation would be kept for a user who now exists and
    never be granted. Whichever comes second waits, then sees what the first committed.
    PostgreSQL: a transaction-scoped advisory lock on the e-mail's hash (a collision only makes
    two e-mails wait for each other). SQLite: the database's write lock (``lock_for_update``).
    Take it before any row lock: ``create-user`` holds it while its grants wait for org rows.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(_EMAIL_LOCK_CLASS, func.hashtext(email)))
        )
    else:
        await lock_for_update(session, select(literal(1)))


def _oldest_valid(now: datetime) -> datetime:
    return now - INVITATION_LIFETIME


def _unexpired() -> ColumnElement[bool]:
    return PendingInvitation.created_at > _oldest_valid(utcnow())


async def purge_expired(
    session: AsyncSession, *, org_id: str | None = None, email: str | None = None
) -> None:
    """Delete the expired invitations of ``org_id`` (or to ``email``), each audited.

    Run before an org invites again (so an expired invitation does not block a new one to the
    same e-mail, nor count towards the cap) and when a user is created.
    """
    conditions = [PendingInvitation.created_at <= _oldest_valid(utcnow())]
    if org_id is not None:
        conditions.append(PendingInvitation.org_id == org_id)
    if email is not None:
        conditions.append(PendingInvitation.email == email)
    expired = (await session.scalars(select(PendingInvitation).where(*conditions))).all()
    for invitation in expired:
        await _delete(session, invitation, user_id=None)


async def _delete(
    session: AsyncSession, invitation: PendingInvitation, user_id: str | None
) -> None:
    before = audit.snapshot(invitation)
    await session.execute(delete(PendingInvitation).where(PendingInvitation.id == invitation.id))
    audit.record_row(
        session, invitation, "DELETE", org_id=invitation.org_id, user_id=user_id, old=before
    )


async def is_pending(session: AsyncSession, org_id: str, email: str) -> bool:
    found = await session.scalar(
        select(PendingInvitation.id).where(
            PendingInvitation.org_id == org_id, PendingInvitation.email == email, _unexpired()
        )
    )
    return found is not None


async def refuse_beyond_cap(session: AsyncSession, org_id: str) -> None:
    """400 ``error_inviting_user_to_organization`` (``TOO_MANY_INVITATIONS``) when the org
    already holds :data:`MAX_PENDING_INVITATIONS_PER_ORG` pending invitations.

    Counts invitations of existing users too, so that the answer never depends on whether the
    e-mail has a user. The caller holds the org's lock, so concurrent invitations count each
    other.
    """
    of_users = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.org_id == org_id,
            Membership.user_right.in_([role.invitation().value for role in INVITABLE_ROLES]),
        )
    )
    of_non_users = await session.scalar(
        select(func.count())
        .select_from(PendingInvitation)
        .where(PendingInvitation.org_id == org_id, _unexpired())
    )
    if (of_users or 0) + (of_non_users or 0) >= MAX_PENDING_INVITATIONS_PER_ORG:
        raise ApiError(
            400,
            "error_inviting_user_to_organization",
            f"This organization already has {MAX_PENDING_INVITATIONS_PER_ORG} pending "
            "invitations: withdraw some (DELETE /organization/members) or wait for them to be "
            "answered or to expire",
            {"data": "TOO_MANY_INVITATIONS", "limit": MAX_PENDING_INVITATIONS_PER_ORG},
        )


async def keep_invitation(
    session: AsyncSession, *, org_id: str, email: str, role: Role, invited_by: str
) -> None:
    """Store an invitation of ``email`` (lower-cased, no user) as ``role``, audited.

    A concurrent duplicate that slipped past the caller's check is refused as the check
    refuses it (400 ``ALREADY_INVITED``), never a 500.
    """
    invitation = PendingInvitation(
        org_id=org_id, email=email, role=role.value, invited_by=invited_by
    )
    session.add(invitation)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ApiError(
            400,
            "error_inviting_user_to_organization",
            "Error inviting user to organization",
            {"data": "ALREADY_INVITED"},
        ) from exc
    audit.record_row(session, invitation, "INSERT", org_id=org_id, user_id=invited_by)


async def pending_members(session: AsyncSession, org_id: str) -> list[MemberOut]:
    """The org's unexpired invitations of non-users, as ``GET /organization/members`` shows
    them (the invitation's id stands for the user id that does not exist yet), oldest first."""
    invitations = await session.scalars(
        select(PendingInvitation)
        .where(PendingInvitation.org_id == org_id, _unexpired())
        .order_by(PendingInvitation.created_at, PendingInvitation.id)
    )
    return [
        MemberOut(
            uid=invitation.id,
            email=invitation.email,
            image_url="",
            role=Role(invitation.role).invitation().value,
            is_tmp=True,
        )
        for invitation in invitations
    ]


async def find_pending(session: AsyncSession, org_id: str, email: str) -> PendingInvitation | None:
    return await session.scalar(
        select(PendingInvitation).where(
            PendingInvitation.org_id == org_id, PendingInvitation.email == email, _unexpired()
        )
    )


async def cancel(session: AsyncSession, invitation: PendingInvitation, user_id: str) -> None:
    """Delete a pending invitation withdrawn by ``user_id`` (audited)."""
    await _delete(session, invitation, user_id=user_id)


async def grant_pending_invitations(session: AsyncSession, user: User) -> Sequence[Membership]:
    """Turn every unexpired invitation to ``user``'s e-mail into an ``invite_<role>``
    membership of the new user; expired ones are deleted. Returns the memberships made.

    Each membership keeps the invitation's date (the invitation was made then) and is audited
    as made by the inviter, as an invitation of an existing user is.
    """
    await purge_expired(session, email=user.email)
    invitations = (
        await session.scalars(
            select(PendingInvitation)
            .where(PendingInvitation.email == user.email)
            .order_by(PendingInvitation.created_at, PendingInvitation.id)
        )
    ).all()
    granted: list[Membership] = []
    for invitation in invitations:
        await _delete(session, invitation, user_id=invitation.invited_by)
        membership = Membership(
            org_id=invitation.org_id,
            user_id=user.id,
            user_right=Role(invitation.role).invitation().value,
            created_at=invitation.created_at,
        )
        session.add(membership)
        await session.flush()
        audit.record_row(
            session, membership, "INSERT", org_id=invitation.org_id, user_id=invitation.invited_by
        )
        granted.append(membership)
    return granted
