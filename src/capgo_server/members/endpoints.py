"""``/organization/members`` (spec §3.1), ``/organization/members/accept`` and ``/decline``
(House routes: answering an invitation)."""

from __future__ import annotations

from fastapi import Request

from capgo_server.auth.principal import AnyModeKey
from capgo_server.db.session import Session
from capgo_server.members import service
from capgo_server.members.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationDeclined,
    MemberInvite,
    MemberOut,
    MemberRemove,
    MemberRemoved,
    MembersQuery,
    PendingInvitationOut,
)
from capgo_server.openapi import API_ERRORS, error_responses
from capgo_server.organizations.schemas import StatusOk
from capgo_server.parsing import (
    body_or_query,
    documented_body,
    documented_body_or_query,
    documented_query,
    validate,
)
from capgo_server.routing import router

members_router = router(
    prefix="/organization/members",
    tags=["members"],
    responses=API_ERRORS | error_responses(403, 404),
)


@members_router.get(
    "", response_model=list[MemberOut], openapi_extra=documented_query(MembersQuery)
)
async def get_members(request: Request, session: Session, principal: AnyModeKey) -> list[MemberOut]:
    """Members of an organization, with pending invitations as ``invite_<role>``."""
    query = validate(MembersQuery, await body_or_query(request))
    return await service.list_members(session, principal, query.orgId)


@members_router.post("", response_model=StatusOk, openapi_extra=documented_body(MemberInvite))
async def invite_member(request: Request, session: Session, principal: AnyModeKey) -> StatusOk:
    """Invite a user by e-mail; they hold ``invite_<role>`` until they accept.

    An e-mail that has no user yet is invited all the same: the invitation is listed with
    ``is_tmp: true`` and given to that user when the operator creates them
    (``capgo-server create-user``), unless it expired first (7 days).
    """
    body = validate(MemberInvite, await body_or_query(request))
    await service.invite_member(session, principal, body)
    return StatusOk()


@members_router.get(
    "/invitations",
    response_model=list[PendingInvitationOut],
    summary="List my pending invitations",
)
async def list_my_invitations(
    session: Session, principal: AnyModeKey
) -> list[PendingInvitationOut]:
    """The organizations inviting the key's own user, with the role each offers, oldest first.

    Answer one with ``POST /organization/members/accept`` or ``/decline``. Any key mode may
    list; a key limited to some organizations sees only those, a key limited to apps none.
    ``GET /organization`` does not show these organizations: an invitation grants nothing
    until accepted.
    """
    return await service.my_invitations(session, principal)


@members_router.post(
    "/accept", response_model=InvitationAccepted, openapi_extra=documented_body(InvitationAccept)
)
async def accept_invitation(
    request: Request, session: Session, principal: AnyModeKey
) -> InvitationAccepted:
    """Accept an invitation to ``orgId`` with the invited user's own key."""
    body = validate(InvitationAccept, await body_or_query(request))
    role = await service.accept_invitation(session, principal, body.orgId)
    return InvitationAccepted(orgId=body.orgId, role=role.value)


@members_router.post(
    "/decline", response_model=InvitationDeclined, openapi_extra=documented_body(InvitationAccept)
)
async def decline_invitation(
    request: Request, session: Session, principal: AnyModeKey
) -> InvitationDeclined:
    """Decline an invitation to ``orgId`` with the invited user's own key; it is deleted."""
    body = validate(InvitationAccept, await body_or_query(request))
    await service.decline_invitation(session, principal, body.orgId)
    return InvitationDeclined(orgId=body.orgId)


@members_router.delete(
    "", response_model=MemberRemoved, openapi_extra=documented_body_or_query(MemberRemove)
)
async def remove_member(request: Request, session: Session, principal: AnyModeKey) -> MemberRemoved:
    """Remove a member or withdraw an invitation (body or query: ``orgId``, ``email``)."""
    body = validate(MemberRemove, await body_or_query(request))
    await service.remove_member(session, principal, body.orgId, str(body.email))
    return MemberRemoved()
