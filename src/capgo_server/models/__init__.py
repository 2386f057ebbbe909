"""ORM tables, one module each. Importing this package registers them all on ``Base.metadata``."""

from capgo_server.models.apikey import ApiKey
from capgo_server.models.audit import AuditLog
from capgo_server.models.membership import Membership
from capgo_server.models.organization import Organization
from capgo_server.models.user import User

__all__ = ["ApiKey", "AuditLog", "Membership", "Organization", "User"]
