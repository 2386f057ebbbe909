"""Creating a user with their first organization and API key (``capgo-server create-user``),
and the invitations that were waiting for their e-mail."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.auth.keys import KeyMode, new_key_value, sha256_hex
from capgo_server.members.pending import grant_pending_invitations, lock_email
from capgo_server.models import ApiKey, User
from capgo_server.organizations.service import found_organization


class UserExistsError(Exception):
    pass


@dataclass(frozen=True)
class GrantedInvitation:
    """An invitation kept for the new user's e-mail, now theirs to accept or decline."""

    org_id: str
    role: str  # ``invite_<role>``


@dataclass(frozen=True)
class NewAccount:
    user_id: str
    org_id: str
    apikey: str
    invitations: list[GrantedInvitation] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """What ``create-user`` prints."""
        return {
            "user_id": self.user_id,
            "org_id": self.org_id,
            "apikey": self.apikey,
            "invitations": [{"org_id": i.org_id, "role": i.role} for i in self.invitations],
        }


async def create_user(
    session: AsyncSession, email: str, org_name: str | None = None, *, hashed_key: bool = False
) -> NewAccount:
    """A user, an org they own as ``super_admin`` and a key of mode ``all`` (flushed only);
    the unexpired invitations to their e-mail become their ``invite_<role>`` memberships.

    Raises :class:`UserExistsError` when a user has that e-mail already.
    """
    email = email.strip().lower()
    await lock_email(session, email)  # an invitation of this e-mail made meanwhile is granted
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserExistsError(f"a user with e-mail {email} already exists")
    user = User(email=email)
    session.add(user)
    await session.flush()
    org = await found_organization(
        session, user, org_name or f"{email.split('@')[0]}'s organization", email
    )
    plain = new_key_value()
    session.add(
        ApiKey(
            user_id=user.id,
            name="all",
            mode=KeyMode.all.value,
            key=None if hashed_key else plain,
            secret_sha256=sha256_hex(plain),
            is_hashed=hashed_key,
            limited_to_orgs=[],
            limited_to_apps=[],
        )
    )
    await session.flush()
    granted = await grant_pending_invitations(session, user)
    return NewAccount(
        user_id=user.id,
        org_id=org.id,
        apikey=plain,
        invitations=[GrantedInvitation(m.org_id, m.user_right) for m in granted],
    )
