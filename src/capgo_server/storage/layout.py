"""Where things live in the bundle store: the one place that names storage paths."""

from __future__ import annotations


def org_files_prefix(org_id: str) -> str:
    """Every stored file of an organization's apps: ``orgs/<org_id>/``."""
    return f"orgs/{org_id}/"


def app_files_prefix(org_id: str, app_id: str) -> str:
    """Every stored file of an app: ``orgs/<org_id>/apps/<app_id>/``."""
    return f"{org_files_prefix(org_id)}apps/{app_id}/"


def bundle_file_path(org_id: str, app_id: str, version: str) -> str:
    """A bundle's zip (its ``r2_path``), the ``filename`` a tus upload names."""
    return f"{app_files_prefix(org_id, app_id)}{version}.zip"


def upload_parts_prefix(upload_id: str) -> str:
    """The received parts of an unfinished upload, one object per PATCH."""
    return f"uploads/{upload_id}/"
