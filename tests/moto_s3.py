"""moto in server mode on loopback, as S3 for the backup tests (a process per fixture)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from core.config import S3Config
from core.data.s3 import s3_client

KEYS = {"TEST_S3_ACCESS": "testing-access", "TEST_S3_SECRET": "testing-secret"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_server(host: str = "127.0.0.1", **env: str) -> Iterator[str]:
    """A moto S3 at http://HOST:PORT until the block ends (``host``: an address of this
    machine that the containers which talk to it reach)."""
    port = free_port()
    binary = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(binary), "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    url = f"http://{host}:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("moto_server exited at start") from None
                time.sleep(0.05)
        else:
            raise RuntimeError("moto_server did not answer within 10 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def s3_config(endpoint: str, bucket: str, prefix: str = "backups") -> S3Config:
    return S3Config(
        endpoint=endpoint,
        bucket=bucket,
        prefix=prefix,
        access_key_env="TEST_S3_ACCESS",
        secret_key_env="TEST_S3_SECRET",
        timeout_seconds=5,
    )


def make_bucket(endpoint: str, bucket: str) -> None:
    client = s3_client(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["TEST_S3_ACCESS"],
        aws_secret_access_key=KEYS["TEST_S3_SECRET"],
    )
    client.create_bucket(Bucket=bucket)
    client.close()


@contextlib.contextmanager
def s3_bucket(bucket: str, host: str = "127.0.0.1") -> Iterator[str]:
    """A moto server holding ``bucket``, with ``KEYS`` in the environment while it runs
    (backups read their credentials from the variables shipbot.yml names); its URL."""
    saved = {key: os.environ.get(key) for key in KEYS}
    os.environ.update(KEYS)
    try:
        with moto_server(host) as url:
            make_bucket(url, bucket)
            yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
