"""Where bundle files live: :class:`BundleStore`, with local-file and S3-compatible backends."""

from capgo_server.storage.base import BundleStore, StoredObjectMissingError

__all__ = ["BundleStore", "StoredObjectMissingError"]
