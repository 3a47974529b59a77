"""Both storage backends behave alike: local directory and S3 (a real SeaweedFS server)."""

import hashlib
import urllib.request
import uuid

import pytest

from pipeline.storage import LocalStorage, S3Storage, open_storage
from vision.errors import NotFoundError


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path, monkeypatch):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_server")
    from pipeline.settings import settings

    monkeypatch.setattr(settings, "s3_endpoint_url", endpoint)
    store = open_storage(f"s3://cardscan-{uuid.uuid4().hex[:8]}/tests")
    assert isinstance(store, S3Storage)
    store.ensure_bucket()
    return store


def test_put_is_content_addressed_and_round_trips(storage):
    data = b"\xff\xd8 not really a jpeg " + uuid.uuid4().bytes
    key = storage.put(data, prefix="originals", content_type="image/jpeg")
    digest = hashlib.sha256(data).hexdigest()
    assert key == f"originals/{digest[:2]}/{digest}.jpg"
    assert storage.get(key) == data
    assert storage.exists(key)
    assert storage.put(data, prefix="originals", content_type="image/jpeg") == key


def test_delete_then_get_is_not_found(storage):
    key = storage.put(b"bye" + uuid.uuid4().bytes, prefix="tmp")
    storage.delete(key)
    assert not storage.exists(key)
    with pytest.raises(NotFoundError):
        storage.get(key)


def test_url_fetches_the_object(storage):
    data = b"fetch me " + uuid.uuid4().bytes
    key = storage.put(data, prefix="crops", content_type="image/png")
    with urllib.request.urlopen(storage.url(key), timeout=10) as resp:
        assert resp.read() == data


def test_local_keys_cannot_escape_the_root(tmp_path):
    store = LocalStorage(tmp_path / "objects")
    (tmp_path / "secret").write_bytes(b"x")
    with pytest.raises(NotFoundError):
        store.get("../secret")


def test_open_storage_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="file:// or s3://"):
        open_storage("ftp://example/x")
