"""Certificates made on the spot for tests: a CA, leaves with chosen names, serials and
dates, and a TLS server on loopback that serves one (as the edge would)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "Test Root") -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(
    ca: tuple[x509.Certificate, Key],
    names: list[str],
    *,
    serial: int = 0x2D101D1A30017055,
    not_before: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    not_after: dt.datetime = dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
    cn: str | None = None,
) -> tuple[x509.Certificate, Key]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn or names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return builder.sign(ca_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pair(cert: x509.Certificate, key: Key, cert_path: Path, key_path: Path) -> None:
    cert_path.write_bytes(pem(cert))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@contextlib.contextmanager
def tls_server(
    by_name: dict[str, tuple[x509.Certificate, Key]], tmp: Path, asked: list[str] | None = None
) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that serves, per SNI name, that name's certificate (the
    first one for any other name), as Traefik does; yields its port. ``asked`` gets each
    handshake's SNI name."""
    contexts: dict[str, ssl.SSLContext] = {}
    for index, (name, (cert, key)) in enumerate(by_name.items()):
        cert_path, key_path = tmp / f"c{index}.pem", tmp / f"k{index}.pem"
        write_pair(cert, key, cert_path, key_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        contexts[name] = context
    default = next(iter(contexts.values()))

    def pick(sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        if asked is not None:
            asked.append(name or "")
        sock.context = contexts.get(name or "", default)

    default.sni_callback = pick
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), conn:
                conn.settimeout(2)
                with default.wrap_socket(conn, server_side=True):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
