"""Checking that a webhook event comes from the forge holding the app's secret.

GitHub signs the body with HMAC-SHA256 (``X-Hub-Signature-256: sha256=<hex>``), Gitea the
same without the prefix (``X-Gitea-Signature: <hex>``), and GitLab sends the secret itself
(``X-Gitlab-Token``). Every comparison takes constant time.
"""

from __future__ import annotations

import hashlib
import hmac

FORGES = ("github", "gitlab", "gitea")
# the header each forge proves itself with (lowercase, as aiohttp's headers compare)
PROOF_HEADER = {
    "github": "x-hub-signature-256",
    "gitlab": "x-gitlab-token",
    "gitea": "x-gitea-signature",
}

# the header naming each delivery (a redelivery keeps it); Forgejo sends Gitea's too
DELIVERY_HEADER = {
    "github": "x-github-delivery",
    "gitlab": "x-gitlab-event-uuid",
    "gitea": "x-gitea-delivery",
}


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def verify(forge: str, secret: str, body: bytes, proof: str | None) -> bool:
    """Whether ``proof`` (the forge's header) shows the sender holds ``secret``."""
    if not proof or not secret or not proof.isascii():
        return False
    proof = proof.strip()
    if forge == "github":
        return _same("sha256=" + hmac_hex(secret, body), proof)
    if forge == "gitea":
        return _same(hmac_hex(secret, body), proof.lower())
    if forge == "gitlab":
        return _same(secret, proof)
    return False


def sign(forge: str, secret: str, body: bytes) -> dict[str, str]:
    """The header a forge would send with ``body`` (for a test, or a hand-made delivery)."""
    if forge == "github":
        return {"X-Hub-Signature-256": "sha256=" + hmac_hex(secret, body)}
    if forge == "gitea":
        return {"X-Gitea-Signature": hmac_hex(secret, body)}
    return {"X-Gitlab-Token": secret}
