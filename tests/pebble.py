"""Debian's pebble (a real ACME CA) and pebble-challtestsrv (its DNS) as processes on
loopback, with a CA and listener certificate made here (the package ships none)."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.certgen import make_ca, make_leaf, pem, write_pair


@dataclass(frozen=True)
class Pebble:
    gateway: str  # where a task on an overlay network reaches this host
    port: int
    management: int
    challtest: int
    ca_pem: bytes  # trust anchor of pebble's own API (LEGO_CA_CERTIFICATES)

    @property
    def directory(self) -> str:
        return f"https://{self.gateway}:{self.port}/dir"

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def root(self) -> str:
        """The root that signs the sites' certificates (new at every pebble start)."""
        url = f"https://127.0.0.1:{self.management}/roots/0"
        with urllib.request.urlopen(url, context=self._context(), timeout=5) as response:
            return response.read().decode()

    def resolve(self, host: str, address: str) -> None:
        """pebble's DNS answers ``address`` for ``host`` (where it checks HTTP-01)."""
        body = json.dumps({"host": host, "addresses": [address]}).encode()
        url = f"http://127.0.0.1:{self.challtest}/add-a"
        urllib.request.urlopen(url, data=body, timeout=5).close()

    def servfail(self, host: str) -> None:
        body = json.dumps({"host": host}).encode()
        url = f"http://127.0.0.1:{self.challtest}/set-servfail"
        urllib.request.urlopen(url, data=body, timeout=5).close()


def _wait(url: str, context: ssl.SSLContext | None, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, context=context, timeout=2).close()
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within 20 s")


@contextlib.contextmanager
def pebble(
    work: Path, gateway: str, http_port: int, validity: int, base: int = 14100
) -> Iterator[Pebble]:
    ca = make_ca("shipbot-test pebble minica")
    listener, key = make_leaf(
        ca, ["localhost", "127.0.0.1", gateway], cn="localhost", not_after=ca[0].not_valid_after_utc
    )
    write_pair(listener, key, work / "cert.pem", work / "key.pem")
    port, management, dns, challtest = base, base + 1000, base + 2, base + 3
    (work / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"0.0.0.0:{port}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(work / "cert.pem"),
                    "privateKey": str(work / "key.pem"),
                    "httpPort": http_port,
                    "tlsPort": 5001,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                    "certificateValidityPeriod": validity,
                }
            }
        )
    )
    logs = [open(work / name, "wb") for name in ("challtestsrv.log", "pebble.log")]  # noqa: SIM115
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                 "-management", f"127.0.0.1:{challtest}"],
                stdout=logs[0], stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        procs.append(
            subprocess.Popen(
                ["pebble", "-config", str(work / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
                stdout=logs[1],
                stderr=subprocess.STDOUT,
                env={**os.environ, "PEBBLE_VA_NOSLEEP": "1"},
            )
        )
        found = Pebble(gateway, port, management, challtest, pem(ca[0]))
        _wait(f"https://127.0.0.1:{port}/dir", found._context(), procs)
        yield found
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
