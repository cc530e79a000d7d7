"""Object storage against moto's S3 server (same boto3 code as production) and the local backend."""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
import uuid

import httpx
import pytest

from service.storage import LocalStorage, ObjectNotFoundError, S3Storage, object_key

MIB = 1024 * 1024


def test_object_key_is_namespaced():
    assert object_key("t1", "edits", "e1", "input") == "tenants/t1/edits/e1/input"


@pytest.mark.parametrize("part", ["..", "../x", "a/b", "", ".hidden"])
def test_object_key_rejects_unsafe_part(part):
    with pytest.raises(ValueError):
        object_key("t1", "edits", part)


def test_s3_round_trip(storage):
    storage.put_bytes("tenants/t/test/1/blob", b"hello")
    assert storage.get_bytes("tenants/t/test/1/blob") == b"hello"


def test_s3_missing_key_raises_not_found(storage):
    with pytest.raises(ObjectNotFoundError):
        storage.get_bytes("tenants/t/test/missing/blob")


def test_s3_large_file_uses_multipart(settings, tmp_path):
    small_parts = settings.model_copy(
        update={"s3_multipart_threshold_bytes": 5 * MIB, "s3_multipart_chunk_bytes": 5 * MIB}
    )
    storage = S3Storage(small_parts)
    path = tmp_path / "large.bin"
    path.write_bytes(os.urandom(11 * MIB))
    storage.put_file("tenants/t/test/2/large.bin", path)
    head = storage.client.head_object(Bucket=storage.bucket, Key="tenants/t/test/2/large.bin")
    # S3 gives multipart objects an ETag of the form "<md5>-<parts>".
    assert head["ETag"].strip('"').endswith("-3")


def test_s3_presigned_url_downloads(storage):
    storage.put_bytes("tenants/t/test/3/blob", b"presigned")
    link = storage.presign("tenants/t/test/3/blob", 600, "http://testserver/")
    assert httpx.get(link.url).content == b"presigned"


def test_s3_presigned_url_states_its_expiry(storage):
    link = storage.presign("tenants/t/test/3/blob", 600, "http://testserver/")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(link.url).query)
    signed_at = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    signed_expiry = signed_at + dt.timedelta(seconds=int(query["X-Amz-Expires"][0]))
    assert abs((signed_expiry - link.expires_at).total_seconds()) <= 2


def test_s3_without_keys_is_rejected(settings):
    anonymous = settings.model_copy(update={"s3_access_key_id": None, "s3_secret_access_key": None})
    with pytest.raises(Exception, match="no S3 credentials"):
        S3Storage(anonymous)


def test_local_link_verifies(tmp_path):
    storage = LocalStorage(tmp_path, b"secret")
    storage.put_bytes("tenants/t/x/1/file", b"data")
    link = storage.presign("tenants/t/x/1/file", 60, "http://host/")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(link.url).query)
    assert storage.verify_link("tenants/t/x/1/file", int(query["expires"][0]), query["signature"][0])


def test_local_link_rejects_other_key(tmp_path):
    storage = LocalStorage(tmp_path, b"secret")
    link = storage.presign("tenants/t/x/1/file", 60, "http://host/")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(link.url).query)
    assert not storage.verify_link("tenants/t/x/2/file", int(query["expires"][0]), query["signature"][0])


def test_local_link_rejects_expired(tmp_path):
    storage = LocalStorage(tmp_path, b"secret")
    link = storage.presign("tenants/t/x/1/file", 60, "http://host/")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(link.url).query)
    past = int(query["expires"][0]) - 3600
    assert not storage.verify_link("tenants/t/x/1/file", past, query["signature"][0])


def test_local_storage_rejects_escaping_key(tmp_path):
    storage = LocalStorage(tmp_path / "root", b"secret")
    with pytest.raises(ValueError):
        storage.put_bytes("../outside", b"data")


@pytest.fixture(scope="module")
def local_files(settings, tmp_path_factory):
    """A gateway with the local storage backend, which serves signed /files/... links itself."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.storage import get_storage

    local_settings = settings.model_copy(
        update={"storage_backend": "local", "storage_dir": tmp_path_factory.mktemp("local-files")}
    )
    storage = get_storage(local_settings)
    key = object_key("tenant", "adapters", "a1", "weights.safetensors")
    storage.put_bytes(key, b"weights", "application/octet-stream")
    with TestClient(create_app(local_settings), raise_server_exceptions=False) as client:
        yield client, storage, key


def test_files_link_with_tampered_signature_is_forbidden(local_files):
    client, storage, key = local_files
    url = storage.presign(key, 60, "http://testserver").url.replace("signature=", "signature=0")
    response = client.get(url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"


def test_files_link_that_expired_is_forbidden(local_files):
    client, storage, key = local_files
    response = client.get(storage.presign(key, -60, "http://testserver").url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"


def test_files_link_downloads(local_files):
    client, storage, key = local_files
    assert client.get(storage.presign(key, 60, "http://testserver").url).content == b"weights"


def test_unsupported_method_is_405(client, auth):
    response = client.delete(f"/edits/{uuid.uuid4()}", headers=auth)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
