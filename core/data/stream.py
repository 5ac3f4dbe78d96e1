"""The stages a backup's bytes go through, each a generator over chunks (never the whole).

dump stdout → ``Tap`` (counts, first and last bytes) → ``gzip_chunks`` → ``encrypt_chunks``
(age, through pyrage, when recipients are configured) → S3; and back for a restore:
S3 → ``Digest`` (sha256 checked at the end) → ``decrypt_chunks`` → ``gunzip_chunks``.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from core.errors import CoreError

if TYPE_CHECKING:
    import pyrage

GZIP_LEVEL = 6
PIPE_READ = 256 * 1024
HEAD, TAIL = 16, 1024


class StreamError(CoreError):
    """A stage of the stream failed (decryption, decompression, a checksum)."""


class Tap:
    """Passes chunks on, keeping their count, size, first and last bytes."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0
        self.head = b""
        self.tail = b""
        self.ended = False  # the source ran to its end (no error, not abandoned)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            if len(self.head) < HEAD:
                self.head = (self.head + chunk)[:HEAD]
            self.tail = (self.tail + chunk[-TAIL:])[-TAIL:]  # never a copy of the whole chunk
            yield chunk
        self.ended = True


class Digest:
    """Passes chunks on; raises at the end when their sha256 is not ``expected``."""

    def __init__(self, chunks: Iterable[bytes], expected: str | None) -> None:
        self._chunks = chunks
        self.expected = expected
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        sha = hashlib.sha256()
        for chunk in self._chunks:
            sha.update(chunk)
            self.size += len(chunk)
            yield chunk
        if self.expected is not None and sha.hexdigest() != self.expected:
            raise StreamError(
                f"the object's sha256 {sha.hexdigest()[:12]}… is not the recorded "
                f"{self.expected[:12]}…: it changed since the backup"
            )


def gzip_chunks(chunks: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip framing
    for chunk in chunks:
        out = packer.compress(chunk)
        if out:
            yield out
    yield packer.flush()


def gunzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    unpacker = zlib.decompressobj(31)
    try:
        for chunk in chunks:
            out = unpacker.decompress(chunk)
            if out:
                yield out
        out = unpacker.flush()
    except zlib.error as exc:
        raise StreamError(f"the backup is not valid gzip: {exc}") from exc
    if not unpacker.eof:
        raise StreamError("the backup's gzip stream is truncated")
    if out:
        yield out


class _Reader(io.RawIOBase):
    """A file-like over chunks, for pyrage's ``*_io`` functions."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            try:
                self._left = next(self._it)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def _through_pipe(work: str, chunks: Iterable[bytes], run: object) -> Iterator[bytes]:
    """Run ``run(reader, writer)`` in a thread and yield what it writes, through an OS
    pipe (a few hundred KB in flight at most)."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            with open(write_fd, "wb") as out:
                run(_Reader(chunks), out)  # type: ignore[operator]
        except BaseException as exc:  # handed to the reading side
            failure.append(exc)

    thread = threading.Thread(target=worker, name=work, daemon=True)
    thread.start()
    with open(read_fd, "rb") as pipe:
        try:
            while chunk := pipe.read1(PIPE_READ):
                yield chunk
        finally:
            pipe.close()  # a reader that stopped early ends the writer with EPIPE
            thread.join()
    if failure:
        error = failure[0]
        if isinstance(error, CoreError):
            raise error
        raise StreamError(f"{work} failed: {error}") from error


def recipients_of(keys: list[str]) -> list[pyrage.x25519.Recipient]:
    import pyrage  # noqa: PLC0415 (~1 MB resident: loads with the first encrypted backup)

    try:
        return [pyrage.x25519.Recipient.from_str(key) for key in keys]
    except pyrage.RecipientError as exc:
        raise StreamError(f"an age recipient in backups.age_recipients is invalid: {exc}") from exc


def encrypt_chunks(chunks: Iterable[bytes], keys: list[str]) -> Iterator[bytes]:
    import pyrage  # noqa: PLC0415 (as in recipients_of)

    recipients = recipients_of(keys)
    return _through_pipe(
        "age encryption", chunks, lambda src, out: pyrage.encrypt_io(src, out, recipients)
    )


def decrypt_chunks(chunks: Iterable[bytes], identity: str) -> Iterator[bytes]:
    import pyrage  # noqa: PLC0415 (as in recipients_of)

    try:
        key = pyrage.x25519.Identity.from_str(identity.strip())
    except pyrage.IdentityError as exc:
        raise StreamError("the age identity is invalid (its value is not shown)") from exc
    return _through_pipe(
        "age decryption", chunks, lambda src, out: pyrage.decrypt_io(src, out, [key])
    )


def drain(chunks: Iterable[bytes]) -> int:
    """Read a stream to its end; how many bytes it had."""
    return sum(len(chunk) for chunk in chunks)
