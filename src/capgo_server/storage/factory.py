"""Choosing the bundle store from the settings."""

from __future__ import annotations

import importlib
from pathlib import Path

from capgo_server.settings import Settings
from capgo_server.storage.base import BundleStore
from capgo_server.storage.local import LocalBundleStore


def make_store(settings: Settings) -> BundleStore:
    """Local files under ``data_dir/bundles`` unless ``CAPGO_STORAGE_URL`` is ``s3://...``."""
    url = settings.storage_url
    if not url:
        return LocalBundleStore(settings.data_dir / "bundles")
    if url.startswith("file://"):
        return LocalBundleStore(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        # Imported on demand: boto3 is slow to import and only S3 deployments need it.
        s3 = importlib.import_module("capgo_server.storage.s3")
        store: BundleStore = s3.S3BundleStore.from_settings(settings)
        return store
    raise ValueError(f"CAPGO_STORAGE_URL must be unset, file://PATH or s3://BUCKET/PREFIX: {url}")
