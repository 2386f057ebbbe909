"""Request and response shapes of ``/organization/members``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, EmailStr, Field, model_validator

from capgo_server.schema_types import JsDatetime, OrgIdText

InvitableRole = Literal["read", "upload", "write", "admin", "super_admin"]
InvitationRole = Literal[
    "invite_read", "invite_upload", "invite_write", "invite_admin", "invite_super_admin"
]
MemberRole = Literal[
    "invite_read",
    "invite_upload",
    "invite_write",
    "invite_admin",
    "invite_super_admin",
    "read",
    "upload",
    "write",
    "admin",
    "super_admin",
]


class MembersQuery(BaseModel):
    orgId: OrgIdText


class MemberInvite(BaseModel):
    """``invite_type`` is the field Capgo's code reads; its docs call it ``role`` (both work)."""

    orgId: OrgIdText
    email: EmailStr
    invite_type: InvitableRole

    @model_validator(mode="before")
    @classmethod
    def _accept_documented_role_field(cls, data: Any) -> Any:
        if isinstance(data, dict) and "invite_type" not in data and "role" in data:
            return {**data, "invite_type": data["role"]}
        return data


class MemberRemove(BaseModel):
    orgId: OrgIdText
    email: EmailStr


class InvitationAccept(BaseModel):
    """The body of ``/accept`` and ``/decline``."""

    orgId: OrgIdText


class MemberOut(BaseModel):
    uid: str
    email: str
    image_url: str
    role: MemberRole
    is_tmp: bool


class PendingInvitationOut(BaseModel):
    """One of the caller's pending invitations (``GET /organization/members/invitations``)."""

    orgId: str = Field(description="The inviting organization; answer with this id.")
    name: str = Field(description="The organization's name.")
    role: InvitationRole = Field(description="The role offered, in its pending form.")
    invited_at: JsDatetime = Field(description="When the invitation was made (UTC).")


class InvitationAccepted(BaseModel):
    status: str = "ok"
    orgId: str
    role: MemberRole


class InvitationDeclined(BaseModel):
    status: str = "ok"
    orgId: str


class MemberRemoved(BaseModel):
    status: str = "OK"
