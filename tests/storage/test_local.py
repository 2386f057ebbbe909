from __future__ import annotations

from pathlib import Path

import pytest

from capgo_server.settings import Settings
from capgo_server.storage.factory import make_store
from capgo_server.storage.local import LocalBundleStore
from tests.storage.behaviour import StoreBehaviour, from_list


@pytest.fixture
def store(tmp_path: Path) -> LocalBundleStore:
    return LocalBundleStore(tmp_path / "bundles")


class TestLocalBundleStore(StoreBehaviour):
    async def test_files_live_under_the_root(self, store: LocalBundleStore) -> None:
        await store.write("orgs/o/apps/a/1.0.0.zip", from_list([b"zip"]))
        assert (store.root / "orgs/o/apps/a/1.0.0.zip").read_bytes() == b"zip"

    def test_has_no_presigned_urls(self, store: LocalBundleStore) -> None:
        assert store.provider == "local"
        assert store.presigned_url("orgs/o/apps/a/1.0.0.zip", 60) is None


class TestMakeStore:
    def test_default_is_local_files_under_the_data_dir(self, tmp_path: Path) -> None:
        store = make_store(Settings(data_dir=tmp_path))
        assert isinstance(store, LocalBundleStore)
        assert store.root == (tmp_path / "bundles").resolve()

    def test_file_url(self, tmp_path: Path) -> None:
        store = make_store(Settings(data_dir=tmp_path, storage_url=f"file://{tmp_path}/b"))
        assert isinstance(store, LocalBundleStore)
        assert store.root == (tmp_path / "b").resolve()

    def test_unknown_scheme_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="CAPGO_STORAGE_URL"):
            make_store(Settings(data_dir=tmp_path, storage_url="ftp://x/y"))
