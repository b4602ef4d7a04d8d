"""Station credentials (the OCPP security-profile 1/2 AuthorizationKey): fingerprints and checks.

Boundary: pure functions, no I/O and no logging. Keys are secrets: nothing here formats them into a
string that could reach a log.

Why the pending key is kept and the confirmed one only fingerprinted: during a rotation the key is
written to the store *before* it is sent (DESIGN §3), and after a crash or a call timeout the
controller must be able to re-send the very same key (the charger may already have applied it). So
the pending key is stored as given (BLOB; the database file is created 0600, and backups hold it too).
Once the charger has connected with it, only a salted SHA-256 fingerprint of the confirmed key is
kept: a comparison of an incoming password needs nothing more. Keys are 16-20 random bytes, so a fast
hash is enough (no dictionary to fear) and keeps a reconnect storm of a whole fleet cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import string

_SCHEME = "s256"
_HEX = frozenset(string.hexdigits)


def fingerprint(key: bytes, *, salt: bytes | None = None) -> str:
    """A salted fingerprint of ``key``: ``"s256$<salt hex>$<digest hex>"``."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.sha256(salt + key).hexdigest()
    return f"{_SCHEME}${salt.hex()}${digest}"


def matches_fingerprint(candidate: bytes, stored: str) -> bool:
    """True when ``candidate`` is the key behind the fingerprint ``stored`` (constant-time compare)."""
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    actual = hashlib.sha256(salt + candidate).hexdigest()
    return hmac.compare_digest(actual.encode(), digest.encode())


def password_candidates(password: bytes) -> tuple[bytes, ...]:
    """The keys a Basic-auth password may stand for: the raw bytes, and the bytes of its hex text.

    Chargers send the AuthorizationKey either as raw bytes or as the hex text it was configured with
    (DESIGN §3); both are accepted.
    """
    candidates = [password]
    text = password.decode("ascii", errors="replace")
    if text and len(text) % 2 == 0 and all(ch in _HEX for ch in text):
        candidates.append(bytes.fromhex(text))
    return tuple(candidates)


def key_accepted(password: bytes, *, pending_key: bytes | None, confirmed_fingerprint: str | None) -> bool:
    """True when ``password`` matches the pending key or the confirmed one (old or new during rotation)."""
    accepted = False
    for candidate in password_candidates(password):
        # No short-circuit: every comparison runs, so timing does not tell which one matched.
        if pending_key is not None and hmac.compare_digest(candidate, pending_key):
            accepted = True
        if confirmed_fingerprint is not None and matches_fingerprint(candidate, confirmed_fingerprint):
            accepted = True
    return accepted
