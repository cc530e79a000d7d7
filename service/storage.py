"""Object storage: S3 (any endpoint, MinIO included) or a local directory for embedded mode.

Keys are namespaced `tenants/<tenant>/<kind>/<id>/<name>`. S3 downloads are presigned URLs. The
local backend has no server of its own, so its links point at the gateway's `/files/<key>` route
and carry an HMAC signature and an expiry time that the gateway checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from service.settings import Settings

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class StorageError(Exception):
    """A storage operation failed (unreachable endpoint, missing bucket, bad credentials)."""


class ObjectNotFoundError(StorageError):
    """The requested key does not exist."""


@dataclasses.dataclass(frozen=True)
class PresignedUrl:
    url: str
    expires_at: dt.datetime


def object_key(tenant_id: object, kind: str, object_id: object, *names: str) -> str:
    """Build `tenants/<tenant>/<kind>/<id>/<names...>`, rejecting parts that could leave the prefix."""
    parts = [str(tenant_id), kind, str(object_id), *names]
    for part in parts:
        if not _KEY_PART.match(part) or ".." in part:
            raise ValueError(f"invalid storage key part {part!r}: use letters, digits, '.', '_' and '-'")
    return "/".join(["tenants", *parts])


class Storage(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None: ...

    def put_stream(
        self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream"
    ) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def download_file(self, key: str, path: Path) -> None: ...

    def iter_chunks(self, key: str) -> Iterator[bytes]: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None: ...

    def presign(self, key: str, expires_in: int, base_url: str) -> PresignedUrl: ...

    def check(self) -> None: ...


def sign_local_link(secret: bytes, key: str, expires: int) -> str:
    message = f"{key}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class LocalStorage:
    """Objects as files under `root`; writes go to a temporary file that is then renamed."""

    def __init__(self, root: Path, signing_secret: bytes):
        self.root = root.resolve()
        self.signing_secret = signing_secret

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} leaves the storage directory")
        return path

    def _write_atomically(self, key: str, stream: BinaryIO) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as output:
                shutil.copyfileobj(stream, output, CHUNK_BYTES)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        import io

        self._write_atomically(key, io.BytesIO(data))

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        with open(path, "rb") as stream:
            self._write_atomically(key, stream)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        self._write_atomically(key, stream)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        return path.read_bytes()

    def download_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFoundError(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        return _iter_file(path)

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        return path.stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presign(self, key: str, expires_in: int, base_url: str) -> PresignedUrl:
        expires_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=expires_in)
        expires = int(expires_at.timestamp())
        signature = sign_local_link(self.signing_secret, key, expires)
        query = urllib.parse.urlencode({"expires": expires, "signature": signature})
        url = f"{base_url.rstrip('/')}/files/{urllib.parse.quote(key)}?{query}"
        return PresignedUrl(url=url, expires_at=expires_at)

    def verify_link(self, key: str, expires: int, signature: str) -> bool:
        if expires < dt.datetime.now(dt.UTC).timestamp():
            return False
        expected = sign_local_link(self.signing_secret, key, expires)
        return hmac.compare_digest(expected, signature)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage directory {self.root} is not writable")


def _iter_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


class S3Storage:
    """Objects in one bucket of an S3 API endpoint; files above the threshold go up in parts."""

    def __init__(self, settings: Settings):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        credentials: dict[str, str] = {}
        if settings.s3_access_key_id and settings.s3_secret_access_key:
            credentials = {
                "aws_access_key_id": settings.s3_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),
            }
        elif not settings.s3_use_credential_chain:
            # Without this guard boto3 would look for credentials elsewhere, instance metadata included.
            raise StorageError(
                "no S3 credentials: set RL4PIX_S3_ACCESS_KEY_ID and RL4PIX_S3_SECRET_ACCESS_KEY, "
                "or RL4PIX_S3_USE_CREDENTIAL_CHAIN=true to use boto3's own lookup"
            )
        config = Config(
            s3={"addressing_style": "path" if settings.s3_path_style else "auto"},
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=config,
            **credentials,
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold_bytes,
            multipart_chunksize=settings.s3_multipart_chunk_bytes,
        )

    def _raise_for(self, error: Exception, key: str) -> None:
        from botocore.exceptions import ClientError

        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFoundError(key) from error
        raise StorageError(f"S3 request for {key!r} failed: {error}") from error

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as error:  # botocore raises several unrelated classes
            self._raise_for(error, key)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self.transfer_config,
            )
        except Exception as error:
            self._raise_for(error, key)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.upload_fileobj(
                stream, self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=self.transfer_config
            )
        except Exception as error:
            self._raise_for(error, key)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as error:
            self._raise_for(error, key)
            raise

    def download_file(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, key, str(path), Config=self.transfer_config)
        except Exception as error:
            self._raise_for(error, key)

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except Exception as error:
            self._raise_for(error, key)
            raise
        return body.iter_chunks(CHUNK_BYTES)

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except Exception as error:
            self._raise_for(error, key)
            raise

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as error:
            self._raise_for(error, key)

    def presign(self, key: str, expires_in: int, base_url: str) -> PresignedUrl:
        # NOTE: with temporary credentials (STS, instance roles) a link stops working when the
        # credentials expire, which can be before `expires_at`. Static keys give the full period.
        issued_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return PresignedUrl(url=url, expires_at=issued_at + dt.timedelta(seconds=expires_in))

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as error:
            raise StorageError(f"bucket {self.bucket!r} is not reachable: {error}") from error

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (tests and first start)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)
            logger.info("created bucket", extra={"bucket": self.bucket})


def local_signing_secret(settings: Settings) -> bytes:
    """Return the HMAC key of local download links: the setting, else a key kept in the data directory."""
    if settings.signing_secret is not None:
        return settings.signing_secret.get_secret_value().encode()
    path = settings.data_dir.resolve() / "signing-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as output:
            output.write(os.urandom(32).hex())
    return path.read_text().strip().encode()


def build_storage(settings: Settings) -> LocalStorage | S3Storage:
    if settings.storage_backend == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.resolved_storage_dir, local_signing_secret(settings))


_storages: dict[int, tuple[Settings, LocalStorage | S3Storage]] = {}


def get_storage(settings: Settings) -> LocalStorage | S3Storage:
    """Return the storage backend for `settings`, built once per settings object."""
    cached = _storages.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, build_storage(settings))
        _storages[id(settings)] = cached
    return cached[1]
