"""Membership roles (spec §2.3), in the order that ``>=`` compares.

Every ``invite_*`` role ranks below ``read``: a pending invitation grants nothing.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    invite_read = "invite_read"
    invite_upload = "invite_upload"
    invite_write = "invite_write"
    invite_admin = "invite_admin"
    invite_super_admin = "invite_super_admin"
    read = "read"
    upload = "upload"
    write = "write"
    admin = "admin"
    super_admin = "super_admin"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    @property
    def is_invitation(self) -> bool:
        return self.value.startswith("invite_")

    def invitation(self) -> Role:
        """``read`` → ``invite_read``: the pending form of a real role."""
        return Role(f"invite_{self.value}")

    def accepted(self) -> Role:
        """``invite_read`` → ``read``: the role an accepted invitation becomes."""
        return Role(self.value.removeprefix("invite_"))

    def at_least(self) -> list[str]:
        """Every role that satisfies this one, for ``user_right IN (...)`` queries."""
        return [role.value for role in _ORDER[self.rank :]]


_ORDER = list(Role)

#: Roles an invitation may offer (``invite_type`` of ``POST /organization/members``).
INVITABLE_ROLES = (Role.read, Role.upload, Role.write, Role.admin, Role.super_admin)
