"""Certificates at the edge: the facts of the one Traefik serves for a domain, and what
Traefik's log says about obtaining them.

Pure parsers (``parse_certificate``, ``acme_outcomes``, ``routed_domains``) turn bytes, log
lines and service labels into facts; ``probe`` is the one executor: a TLS handshake with SNI
against the proxy's published HTTPS port, which shows exactly what a browser would get.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import CoreError
from core.host_rules import routed_hosts
from core.names import LABEL_APP, LABEL_ENV

if TYPE_CHECKING:
    from cryptography import x509

# Traefik's own self-signed certificate, served for a domain until ACME succeeds
DEFAULT_CERT_CN = "TRAEFIK DEFAULT CERT"
ACME_FAILED = "Unable to obtain ACME certificate for domains"
# success at DEBUG (Traefik) and at INFO (lego, inside Traefik)
ACME_OBTAINED = ("Certificates obtained for domains", "Server responded with a certificate.")


class CertError(CoreError):
    """A certificate or a handshake could not be read."""


@dataclass(frozen=True)
class CertFacts:
    """What a served certificate says about itself."""

    subject: str
    issuer: str
    serial: str  # lower-case hex, as CAs and openssl print it
    not_before: dt.datetime
    not_after: dt.datetime
    sans: tuple[str, ...]

    def covers(self, domain: str) -> bool:
        """Whether a client asking for ``domain`` would accept this certificate's names."""
        domain = domain.lower()
        for name in self.sans:
            name = name.lower()
            if name == domain:
                return True
            if name.startswith("*.") and domain.partition(".")[2] == name[2:]:
                return True
        return False

    def days_left(self, now: dt.datetime) -> int:
        """Whole days until ``not_after`` (negative once expired)."""
        return (self.not_after - now) // dt.timedelta(days=1)


@dataclass(frozen=True)
class AcmeOutcome:
    """The last thing Traefik's log said about obtaining a domain's certificate."""

    at: dt.datetime
    ok: bool
    error: str = ""


def _cn(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def parse_certificate(data: bytes) -> CertFacts:
    """The leaf of a PEM chain (as acme.json keeps it) or one DER certificate (as a
    handshake gives it)."""
    # x509 loads with the first certificate read, not with every command line
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificates(data)[0]
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertError(f"not a certificate: {exc}") from exc
    try:
        sans = tuple(
            cert.extensions.get_extension_for_oid(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME
            ).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        sans = ()
    return CertFacts(
        subject=_cn(cert.subject),
        issuer=_cn(cert.issuer),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=sans,
    )


def _domains(entry: Mapping[str, Any]) -> list[str]:
    """The domains a Traefik/lego log entry is about: a ``domains`` field (list or
    comma-separated), else the ``[a b]`` or ``"a"`` that Traefik writes into the message."""
    field = entry.get("domains")
    if isinstance(field, list):
        return [str(d) for d in field]
    if isinstance(field, str) and field:
        return [d.strip() for d in field.split(",") if d.strip()]
    message = str(entry.get("message", ""))
    if "[" in message and message.endswith("]"):
        return message[message.rindex("[") + 1 : -1].split()
    return re.findall(r'"([^"]+)"', message)


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def acme_outcomes(lines: Iterable[str]) -> dict[str, AcmeOutcome]:
    """Per domain, the latest success or failure in Traefik's JSON log lines (any order);
    a failure keeps lego's error text verbatim."""
    latest: dict[str, AcmeOutcome] = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        message = str(entry.get("message", ""))
        if message.startswith(ACME_FAILED):
            outcome_ok, error = False, str(entry.get("error", ""))
        elif message.startswith(ACME_OBTAINED):
            outcome_ok, error = True, ""
        else:
            continue
        at = _timestamp(entry.get("time"))
        if at is None:
            continue
        for domain in _domains(entry):
            seen = latest.get(domain)
            if seen is None or at >= seen.at:
                latest[domain] = AcmeOutcome(at, outcome_ok, error)
    return latest


@dataclass(frozen=True)
class Routed:
    app: str
    env: str
    domain: str


def routed_domains(services: Iterable[Mapping[str, Any]]) -> list[Routed]:
    """Every domain in the router rules of shipbot's services (``routed_hosts``), sorted."""
    found: dict[str, Routed] = {}
    for service in services:
        labels = service.get("Spec", {}).get("Labels") or {}
        app, env = labels.get(LABEL_APP), labels.get(LABEL_ENV)
        if not app or not env:
            continue
        for domain in routed_hosts(labels):
            found.setdefault(domain, Routed(app, env, domain))
    return [found[d] for d in sorted(found)]


def probe(address: str, port: int, domain: str, timeout: float = 5.0) -> CertFacts:
    """The certificate the proxy at ``address:port`` serves for ``domain`` (SNI). Not
    verified here: the caller judges it (``covers``, the issuer), so an unissued domain
    shows Traefik's default certificate instead of an error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # noqa: S503 (facts are read, never trusted)
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=domain) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise CertError(f"TLS handshake with {address}:{port} for {domain} failed: {exc}") from exc
    if not der:
        raise CertError(f"{address}:{port} sent no certificate for {domain}")
    return parse_certificate(der)
