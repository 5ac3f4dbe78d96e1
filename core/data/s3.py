"""S3 for backups, through boto3: a streamed multipart upload that proves what arrived.

``upload`` sends a stream of chunks as parts of about ``PART_SIZE`` (each with its
Content-MD5, so S3 refuses a part damaged on the way), one part uploading while the next
fills, so two parts are in memory. It returns the size, the sha256 of everything sent and the
ETag S3 must report for exactly those parts (md5 of the parts' md5s, "-N"); ``head`` reads
back what S3 holds. The keys come from the variables shipbot.yml names, never the file:
from the environment, or else from a file of that name in ``SHIPBOT_SECRETS_DIR`` (default
/run/secrets, where Swarm and Kubernetes mount secrets), as shipbot's own settings are read.
Each backup row names the endpoint and bucket its object went to; ``at(row)`` is the store
for that place (with the configured credentials), the configured one for older rows.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import S3Config
from core.errors import CoreError

SECRETS_DIR = "/run/secrets"
PART_SIZE = 5 * 1024 * 1024  # S3's parts are ≥ 5 MiB but the last
PARTS_PER_SIZE = 1000  # then the part size doubles (S3 allows 10,000 parts)
READ_SIZE = 1024 * 1024


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    import boto3  # loads with the first S3 client, not with shipbot

    return boto3.session.Session()


def s3_client(**options: Any) -> Any:
    """An S3 client from the process's one boto3 session: a new session reads and parses
    botocore's JSON models again (~100 ms of CPU per client), the session's second client
    costs ~5 ms. A session is not thread-safe, its clients are: the lock guards only the
    making; each client carries its own credentials and settings."""
    with _SESSION_LOCK:
        return _session().client("s3", **options)


class S3Error(CoreError):
    """S3 refused or could not be reached; the message says which and what to check."""


@dataclass(frozen=True)
class Sent:
    size: int
    sha256: str
    etag: str  # what S3 must report for these parts


@dataclass(frozen=True)
class Stored:
    size: int
    etag: str


def _explain(action: str, exc: Exception, config: S3Config) -> S3Error:
    import botocore.exceptions  # loaded already: the client that raised ``exc`` is boto3's

    where = config.endpoint or "AWS"
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            return S3Error(f"{action}: the bucket {config.bucket} does not exist at {where}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return S3Error(
                f"{action}: S3 at {where} refused the credentials ({code}): check "
                f"{config.access_key_env} and {config.secret_key_env}"
            )
        return S3Error(f"{action}: S3 at {where} said {code}: {message}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return S3Error(
            f"{action}: no S3 credentials: set {config.access_key_env} and {config.secret_key_env}"
        )
    return S3Error(f"{action}: S3 at {where} cannot be reached ({type(exc).__name__}: {exc})")


@contextlib.contextmanager
def s3_errors(action: str, config: S3Config) -> Iterator[None]:
    import botocore.exceptions  # boto3 loads with the first S3 client, not with shipbot

    try:
        yield
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise _explain(action, exc, config) from exc


def credential(name: str, environ: Mapping[str, str]) -> str | None:
    """The variable ``name`` from ``environ``, or else the file ``name`` in the secrets
    folder (its content without the line end); None when neither holds it."""
    if environ.get(name):
        return environ[name]
    path = Path(environ.get("SHIPBOT_SECRETS_DIR") or SECRETS_DIR) / name
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class S3Store:
    """One bucket and prefix; blocking (callers use ``asyncio.to_thread``)."""

    def __init__(self, config: S3Config, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.config = config
        self.environ = environ
        self._elsewhere: dict[tuple[str | None, str], S3Store] = {}
        access = credential(config.access_key_env, environ)
        secret = credential(config.secret_key_env, environ)
        if not access or not secret:
            raise S3Error(
                f"no S3 credentials: set {config.access_key_env} and {config.secret_key_env}"
            )
        from botocore.config import Config

        self.client: Any = s3_client(
            endpoint_url=config.endpoint,
            region_name=config.region,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=Config(
                connect_timeout=config.timeout_seconds,
                read_timeout=config.timeout_seconds,
                retries={"max_attempts": 2, "mode": "standard"},
                # S3-compatible stores (MinIO, R2, B2, moto) answer on path-style URLs
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def at(self, row: Mapping[str, Any]) -> S3Store:
        """The store holding backup ``row``'s object: its recorded endpoint and bucket (a
        row from before they were recorded says neither: this one). Closed with this one."""
        if not row.get("bucket"):
            return self
        endpoint, bucket = row.get("endpoint") or None, row["bucket"]  # no endpoint: AWS
        if (endpoint, bucket) == (self.config.endpoint, self.config.bucket):
            return self
        if (endpoint, bucket) not in self._elsewhere:
            moved = self.config.model_copy(update={"endpoint": endpoint, "bucket": bucket})
            self._elsewhere[endpoint, bucket] = S3Store(moved, self.environ)
        return self._elsewhere[endpoint, bucket]

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.config.prefix, *parts) if p.strip("/"))

    def upload(
        self, key: str, chunks: Iterable[bytes], finish: Callable[[], None] = lambda: None
    ) -> Sent:
        """Stream ``chunks`` to ``key``. ``finish`` runs when the stream ended, before the
        object is made whole: raising there (the dump tool failed) aborts the upload, as
        any other failure does, so no partial object is ever stored."""
        bucket = self.config.bucket
        with s3_errors(f"starting the upload of {key}", self.config):
            upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        sha, size, digests, parts = hashlib.sha256(), 0, [], []
        pending: Future[dict[str, Any]] | None = None
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                for body in _parts(chunks):
                    sha.update(body)
                    size += len(body)
                    digest = hashlib.md5(body, usedforsecurity=False).digest()
                    digests.append(digest)
                    if pending is not None:
                        parts.append(pending.result())
                    pending = pool.submit(self._part, key, upload_id, len(digests), body, digest)
                if pending is not None:
                    parts.append(pending.result())
            finish()
            with s3_errors(f"finishing the upload of {key}", self.config):
                self.client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        whole = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
        return Sent(size, sha.hexdigest(), f"{whole}-{len(digests)}")

    def _part(self, key: str, upload_id: str, number: int, body: bytearray, md5: bytes) -> dict:
        with s3_errors(f"uploading part {number} of {key}", self.config):
            answer = self.client.upload_part(
                Bucket=self.config.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ContentMD5=base64.b64encode(md5).decode(),
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def head(self, key: str) -> Stored:
        with s3_errors(f"reading back {key}", self.config):
            found = self.client.head_object(Bucket=self.config.bucket, Key=key)
        return Stored(found["ContentLength"], found["ETag"].strip('"'))

    def download(self, key: str) -> Iterator[bytes]:
        with s3_errors(f"downloading {key}", self.config):
            body = self.client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(READ_SIZE)
            finally:
                body.close()

    def delete(self, key: str) -> None:
        with s3_errors(f"deleting {key}", self.config):
            self.client.delete_object(Bucket=self.config.bucket, Key=key)

    def close(self) -> None:
        for other in self._elsewhere.values():
            other.close()
        self._elsewhere.clear()
        with contextlib.suppress(Exception):
            self.client.close()


def part_size(number: int) -> int:
    """The size part ``number`` (1-based) fills up to: S3's least (5 MiB) for the first
    thousand, doubling every thousand after, so the 10,000 parts S3 allows still hold a
    dump of terabytes while a usual one keeps each part, and the bot's memory, small."""
    return PART_SIZE << min((number - 1) // PARTS_PER_SIZE, 10)


def _parts(chunks: Iterable[bytes]) -> Iterator[bytearray]:
    """The stream cut into parts of at least ``part_size``; at least one, possibly empty.

    Each part is one buffer that grows in place and is handed over whole, never sliced
    or copied: a part is a little over its size (by less than a chunk), which S3 allows,
    and memory holds the filling part and the one uploading, nothing more.
    """
    buffer = bytearray()
    emitted = 0
    for chunk in chunks:
        buffer += chunk
        if len(buffer) >= part_size(emitted + 1):
            yield buffer
            buffer = bytearray()
            emitted += 1
    if buffer or not emitted:
        yield buffer
