"""Rules for organization membership: list, invite, accept or decline an invitation, remove.

House decisions: an ``admin`` may invite up to ``admin``; only a ``super_admin`` may grant
``super_admin``. An invitation is ``invite_<role>`` and grants nothing until the invited user
accepts it with their own key; with the same key they may decline it instead, which deletes it.
An invitation to an e-mail that has no user yet is kept until that user is created
(:mod:`capgo_server.members.pending`).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server import audit
from capgo_server.auth.access import authorize_org, cannot_access_organization, is_uuid
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import WRITE_MODES, Principal
from capgo_server.auth.roles import INVITABLE_ROLES, Role
from capgo_server.clock import utcnow
from capgo_server.db.locks import lock_for_update
from capgo_server.errors import ApiError
from capgo_server.members import pending
from capgo_server.members.schemas import MemberInvite, MemberOut, PendingInvitationOut
from capgo_server.models import Membership, Organization, User


def _invite_refused(status: str) -> ApiError:
    return ApiError(
        400,
        "error_inviting_user_to_organization",
        "Error inviting user to organization",
        {"data": status},
    )


async def list_members(session: AsyncSession, principal: Principal, org_id: str) -> list[MemberOut]:
    await authorize_org(
        session, principal, org_id, role=Role.read, denied=cannot_access_organization(org_id)
    )
    rows = await session.execute(
        select(User, Membership.user_right)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.created_at, Membership.id)
    )
    members = [
        MemberOut(
            uid=user.id, email=user.email, image_url=user.image_url or "", role=right, is_tmp=False
        )
        for user, right in rows.all()
    ]
    return members + await pending.pending_members(session, org_id)


async def invite_member(session: AsyncSession, principal: Principal, body: MemberInvite) -> None:
    """Invite ``body.email`` as ``invite_<role>``: a membership of an existing user, or a kept
    invitation of an e-mail that has no user yet (granted when that user is created).

    Refusals are 400 ``error_inviting_user_to_organization`` with ``moreInfo.data`` one of
    Capgo's statuses: ``NO_RIGHTS`` (granting above one's own rank), ``ALREADY_INVITED``
    (already a member or invited), or ``TOO_MANY_INVITATIONS`` (see
    :func:`pending.refuse_beyond_cap`). Every refusal that does not need the caller's rights
    comes before the e-mail is looked up, so a caller without them never learns whether the
    e-mail has a user; one with them learns it from the members list anyway.
    """
    access = await authorize_org(
        session,
        principal,
        body.orgId,
        role=Role.admin,
        modes=WRITE_MODES,
        org_wide=True,
        denied=cannot_access_organization(body.orgId),
    )
    offered = Role(body.invite_type)
    if offered == Role.super_admin and access.role != Role.super_admin:
        raise _invite_refused("NO_RIGHTS")
    org_id = access.org.id
    email = str(body.email).lower()
    # The e-mail's lock comes first, as in create-user: that one holds it while the memberships
    # it grants wait for their orgs' rows, so taking the org's row first would deadlock.
    await pending.lock_email(session, email)
    # Invitations to one org run one at a time from here, so that concurrent ones count each
    # other against the cap; the caller's rights are read again under the lock.
    await lock_for_update(session, select(Organization.id).where(Organization.id == org_id))
    await authorize_org(
        session,
        principal,
        org_id,
        role=Role.admin,
        modes=WRITE_MODES,
        org_wide=True,
        denied=cannot_access_organization(org_id),
    )
    await pending.purge_expired(session, org_id=org_id)
    user = await session.scalar(select(User).where(User.email == email))
    if user is not None:
        invited = await session.scalar(
            select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user.id)
        )
        already = invited is not None
    else:
        already = await pending.is_pending(session, org_id, email)
    if already:
        raise _invite_refused("ALREADY_INVITED")
    await pending.refuse_beyond_cap(session, org_id)
    if user is None:
        await pending.keep_invitation(
            session, org_id=org_id, email=email, role=offered, invited_by=principal.user_id
        )
        return
    membership = Membership(org_id=org_id, user_id=user.id, user_right=offered.invitation().value)
    session.add(membership)
    await session.flush()
    audit.record_row(session, membership, "INSERT", org_id=org_id, user_id=principal.user_id)


async def my_invitations(session: AsyncSession, principal: Principal) -> list[PendingInvitationOut]:
    """The caller's own pending invitations (``invite_<role>`` memberships), oldest first.

    Any key mode may read them. A key limited to some orgs sees only those; a key limited to
    some apps sees none (its apps are in orgs the user already belongs to, and such a key
    cannot answer invitations).
    """
    if principal.is_app_limited:
        return []
    query = (
        select(Organization, Membership)
        .join(Membership, Membership.org_id == Organization.id)
        .where(
            Membership.user_id == principal.user_id,
            Membership.user_right.in_([role.invitation().value for role in INVITABLE_ROLES]),
        )
        .order_by(Membership.created_at, Membership.id)
    )
    for key in principal.keys:
        if key.limited_to_orgs:
            query = query.where(Organization.id.in_(key.limited_to_orgs))
    return [
        PendingInvitationOut(
            orgId=org.id,
            name=org.name,
            role=membership.user_right,
            invited_at=membership.created_at,
        )
        for org, membership in (await session.execute(query)).all()
    ]


def _may_answer_invitations(principal: Principal, org_id: str) -> None:
    """400 ``cannot_access_organization`` for a key of mode read/upload, limited to other orgs
    or limited to apps (a key for some apps does not manage memberships)."""
    if (
        not is_uuid(org_id)
        or not principal.may_use_org(org_id)
        or not principal.has_mode(WRITE_MODES)
        or principal.is_app_limited
    ):
        raise cannot_access_organization(org_id)


async def _pending_invitation(
    session: AsyncSession, principal: Principal, org_id: str
) -> Membership:
    """The caller's own ``invite_<role>`` to ``org_id``, else 404 ``invitation_not_found``."""
    membership = await session.scalar(
        select(Membership).where(
            Membership.org_id == org_id, Membership.user_id == principal.user_id
        )
    )
    if membership is None or not Role(membership.user_right).is_invitation:
        raise _no_invitation(org_id)
    return membership


def _no_invitation(org_id: str) -> ApiError:
    return ApiError(
        404, "invitation_not_found", "No pending invitation to this organization", {"orgId": org_id}
    )


def _still_pending(membership: Membership) -> ColumnElement[bool]:
    # Written as a condition of the change itself, so that of an accept, a decline and a
    # withdrawal racing on one invitation only the first takes effect; the others find nothing.
    return and_(Membership.id == membership.id, Membership.user_right == membership.user_right)


async def accept_invitation(session: AsyncSession, principal: Principal, org_id: str) -> Role:
    """Turn the caller's own ``invite_<role>`` into ``<role>``; returns the role now held.

    400 ``cannot_access_organization`` for a key that may not answer invitations (see
    :func:`_may_answer_invitations`); 404 ``invitation_not_found`` when none is pending.
    """
    _may_answer_invitations(principal, org_id)
    membership = await _pending_invitation(session, principal, org_id)
    before = audit.snapshot(membership)
    role = Role(membership.user_right).accepted()
    accepted = cast(
        CursorResult[Any],
        await session.execute(
            update(Membership)
            .where(_still_pending(membership))
            .values(user_right=role.value, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    )
    if accepted.rowcount != 1:
        raise _no_invitation(org_id)
    await session.refresh(membership)
    audit.record_row(
        session, membership, "UPDATE", org_id=org_id, user_id=principal.user_id, old=before
    )
    return role


async def decline_invitation(session: AsyncSession, principal: Principal, org_id: str) -> None:
    """Delete the caller's own ``invite_<role>``; audited as a withdrawn invitation is.

    Refused as :func:`accept_invitation` refuses; the organization may invite again later.
    """
    _may_answer_invitations(principal, org_id)
    membership = await _pending_invitation(session, principal, org_id)
    before = audit.snapshot(membership)
    declined = cast(
        CursorResult[Any],
        await session.execute(
            delete(Membership)
            .where(_still_pending(membership))
            .execution_options(synchronize_session=False)
        ),
    )
    if declined.rowcount != 1:
        raise _no_invitation(org_id)
    audit.record_row(
        session, membership, "DELETE", org_id=org_id, user_id=principal.user_id, old=before
    )


async def remove_member(
    session: AsyncSession, principal: Principal, org_id: str, email: str
) -> None:
    """Remove a member (or withdraw an invitation); the removed user loses access at once.

    Anyone may leave an organization (key mode write/all, not limited to apps: such a key
    does not manage memberships, not even its own user's). Removing someone else needs the
    ``admin`` role and a key of mode ``all`` (Capgo's rule), and never someone ranked above the
    caller (403 ``cannot_delete_higher_priority_role``). The last ``super_admin`` cannot be
    removed (400 ``cannot_remove_last_super_admin``): an organization always has an owner.
    """
    denied = cannot_access_organization(org_id)
    access = await authorize_org(
        session, principal, org_id, role=Role.read, denied=denied, modes=WRITE_MODES, org_wide=True
    )
    # Two owners leaving at once must not both see "another super_admin remains": from here on
    # removals from this org run one at a time, and everything is read again under the lock
    # (the caller may have been removed meanwhile).
    await lock_for_update(session, select(Organization.id).where(Organization.id == org_id))
    access = await authorize_org(
        session, principal, org_id, role=Role.read, denied=denied, modes=WRITE_MODES, org_wide=True
    )
    target = await session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id, User.email == email.lower())
    )
    if target is None:
        invitation = await pending.find_pending(session, org_id, email.lower())
        if invitation is None:
            raise ApiError(
                404, "user_not_found", "User not found in this organization", {"email": email}
            )
        # An invitation of a non-user is never the caller's own: withdrawing it takes what
        # withdrawing anyone else's invitation takes.
        if not _may_remove_others(access.role, principal):
            raise denied
        await pending.cancel(session, invitation, principal.user_id)
        return
    if target.user_id != principal.user_id:
        if not _may_remove_others(access.role, principal):
            raise denied
        if Role(target.user_right).rank > access.role.rank:
            raise ApiError(
                403,
                "cannot_delete_higher_priority_role",
                "You cannot remove a member with a higher role than yours",
                {"email": email},
            )
    if target.user_right == Role.super_admin.value:
        owners = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org_id, Membership.user_right == Role.super_admin.value)
        )
        if (owners or 0) <= 1:
            raise ApiError(
                400,
                "cannot_remove_last_super_admin",
                "An organization must keep at least one super_admin",
                {"email": email},
            )
    before = audit.snapshot(target)
    await session.execute(delete(Membership).where(Membership.id == target.id))
    audit.record_row(
        session, target, "DELETE", org_id=org_id, user_id=principal.user_id, old=before
    )


def _may_remove_others(role: Role, principal: Principal) -> bool:
    """Removing someone else needs the ``admin`` role and a key of mode ``all`` (Capgo's rule)."""
    return role.rank >= Role.admin.rank and principal.has_mode({KeyMode.all})
