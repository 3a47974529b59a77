"""Object storage for originals, crops and catalog images: a local directory or S3 (boto3).

Keys are content-addressed by default (`<prefix>/<sha256[:2]>/<sha256>.<ext>`), so storing the
same bytes twice is a no-op and a key never points at changed content.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from urllib.parse import urlparse

from pipeline.settings import settings
from vision.errors import NotFoundError, TransientError

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
}


def content_key(data: bytes, *, prefix: str, content_type: str | None = None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    ext = EXTENSIONS.get(content_type or "", "bin")
    return f"{prefix}/{digest[:2]}/{digest}.{ext}"


class Storage(ABC):
    """put / get / exists / delete and a URL a client can fetch."""

    url_scheme: str

    def put(
        self,
        data: bytes,
        *,
        key: str | None = None,
        prefix: str = "objects",
        content_type: str = "application/octet-stream",
    ) -> str:
        key = key or content_key(data, prefix=prefix, content_type=content_type)
        self._put(key, data, content_type)
        return key

    @abstractmethod
    def _put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def url(self, key: str) -> str:
        """A URL for the object: file:// locally, presigned https for S3."""


class LocalStorage(Storage):
    url_scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise NotFoundError(f"invalid storage key {key!r}")
        return path

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.exists() and path.stat().st_size == len(data):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half an object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} not found") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


class S3Storage(Storage):
    url_scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=settings.s3_region,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, fn, **kwargs):  # noqa: ANN001, ANN202
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise NotFoundError(f"object {kwargs.get('Key')} not found") from exc
            # A server still starting or overloaded answers 500/503 (InternalError, SlowDown)
            # past botocore's own retries; that is an outage to wait out, not a bad request.
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
                raise TransientError(f"S3 unavailable: {code or exc}") from exc
            raise
        except BotoCoreError as exc:  # endpoint down, timeouts: worth a retry
            raise TransientError(f"S3 unavailable: {exc}") from exc

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self._call(self.client.put_object, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self._call(self.client.get_object, Key=self._key(key))["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self._call(self.client.head_object, Key=self._key(key))
        except NotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Key=self._key(key))

    def url(self, key: str) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=settings.presign_expiry_s,
        )


def open_storage(url: str | None = None) -> Storage:
    """Storage for `url` (file:///dir or s3://bucket/prefix); default from settings."""
    parsed = urlparse(url or settings.effective_storage_url)
    if parsed.scheme == "file":
        return LocalStorage(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3":
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=settings.s3_endpoint_url)
    raise ValueError(f"unsupported storage URL {url!r}: use file:// or s3://")


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
