"""ORM tables, one module each. Importing this package registers them all on ``Base.metadata``."""

from capgo_server.models.apikey import ApiKey
from capgo_server.models.app import App
from capgo_server.models.app_id_reservation import AppIdReservation
from capgo_server.models.audit import AuditLog
from capgo_server.models.bundle import Bundle
from capgo_server.models.bundle_draft import BundleDraft
from capgo_server.models.channel import Channel, ChannelOverride, DeployHistory
from capgo_server.models.device import Device
from capgo_server.models.membership import Membership
from capgo_server.models.organization import Organization
from capgo_server.models.pending_invitation import PendingInvitation
from capgo_server.models.stats import DailyMauChange, DailyVersion, DeviceActivity, StatsEvent
from capgo_server.models.upload import Upload
from capgo_server.models.usage import DailyBandwidth
from capgo_server.models.user import User

__all__ = [
    "ApiKey",
    "App",
    "AppIdReservation",
    "AuditLog",
    "Bundle",
    "BundleDraft",
    "Channel",
    "ChannelOverride",
    "DailyBandwidth",
    "DailyMauChange",
    "DailyVersion",
    "DeployHistory",
    "Device",
    "DeviceActivity",
    "Membership",
    "Organization",
    "PendingInvitation",
    "StatsEvent",
    "Upload",
    "User",
]
