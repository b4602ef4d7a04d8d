"""Webhook authentication: GitHub-style `X-Hub-Signature-256` (HMAC-SHA256 of the raw body).

A push webhook only makes the git source fetch now (`GitSource.trigger()`); what is loaded still comes
from the repository, so a forged call could at worst cause an extra fetch. It is checked anyway.

Boundary: the signature check only; the HTTP endpoint lives with the controller's API.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(secret: str | bytes, body: bytes) -> str:
    """The header value a sender with `secret` puts on `body` ("sha256=<hex>")."""
    key = secret.encode() if isinstance(secret, str) else secret
    return _PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """True if `header` ("sha256=<hex>") is the HMAC-SHA256 of the raw `body` under `secret`.

    Compared in constant time. An empty secret verifies nothing (anyone could sign with it), nor does a
    missing or malformed header.
    """
    if not secret or not header:
        return False
    header = header.strip()
    if not header.lower().startswith(_PREFIX):
        return False
    given = header[len(_PREFIX):].lower()
    if not given.isascii():
        return False
    return hmac.compare_digest(sign(secret, body)[len(_PREFIX):].encode(), given.encode())
