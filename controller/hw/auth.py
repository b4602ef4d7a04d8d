"""Charger authentication at the websocket handshake (OCPP 1.6 security profiles 1 and 2).

- The identity is the last non-empty segment of the URL path, percent-decoded (chargers differ: with or
  without a prefix such as /ocpp/, with or without a trailing slash, with a query string).
- HTTP Basic: user = the identity, password = the station's AuthorizationKey. The key is 16-20 bytes,
  configured as hex (up to 40 hex digits) or as text; chargers send either the raw bytes or the hex
  text, so both are accepted, compared as bytes in constant time. During a key rotation the confirmed
  and the pending key are both accepted until the charger confirms the new one.
- Repeated bad passwords are slowed down (exponential delay per identity and peer, capped) and logged
  once per burst, never with the password.

Boundary: pure helpers plus a small in-memory throttle; no sockets.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from controller.config.model import SecretRef

log = logging.getLogger("chargeops.hw.auth")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){1,20}$")


def identity_from_path(path: str) -> str | None:
    """The charge point identity in a request path, or None when there is none."""
    raw = path.split("?", 1)[0].split("#", 1)[0]
    segments = [s for s in raw.split("/") if s]
    if not segments:
        return None
    ident = urllib.parse.unquote(segments[-1])
    return ident or None


def resolve_secret(ref: SecretRef, secrets_dir: Path | None,
                   env: Mapping[str, str] | None = None) -> str | None:
    """The secret a reference points to (environment variable or file in the secrets directory)."""
    environ = os.environ if env is None else env
    if ref.env:
        value = environ.get(ref.env)
        return value.strip() if value else None
    if ref.file and secrets_dir is not None:
        p = (secrets_dir / ref.file).resolve()
        if secrets_dir.resolve() not in p.parents:
            return None  # never read outside the secrets directory
        try:
            return p.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return None


def key_bytes(secret: str) -> bytes:
    """A configured AuthorizationKey as bytes: hex digits are decoded, other text is taken as UTF-8."""
    text = secret.strip()
    if _HEX.match(text) and len(text) >= 32:
        return bytes.fromhex(text)
    return text.encode("utf-8")


def parse_basic_auth(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return urllib.parse.unquote(user.decode("utf-8", "replace")), password


def password_matches(password: bytes, keys: Sequence[bytes]) -> bool:
    """True when the password equals one of the keys, sent as raw bytes or as hex text."""
    candidates = [password]
    try:
        text = password.decode("ascii")
        if _HEX.match(text):
            candidates.append(bytes.fromhex(text))
    except UnicodeDecodeError:
        pass
    ok = False
    for key in keys:
        for cand in candidates:
            # compare every pair, so timing does not tell which one matched
            ok |= hmac.compare_digest(cand, key)
    return ok


class AuthThrottle:
    """Slows down repeated bad passwords per (identity, peer); logs once per burst."""

    def __init__(self, base_delay: float = 0.25, max_delay: float = 5.0, forget_after: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000):
        self.base_delay, self.max_delay, self.forget_after = base_delay, max_delay, forget_after
        self.clock = clock
        self.max_entries = max_entries
        self._fails: dict[tuple[str, str], tuple[int, float]] = {}

    def delay_for(self, identity: str, peer: str) -> float:
        n, last = self._fails.get((identity, peer), (0, 0.0))
        if n == 0 or self.clock() - last > self.forget_after:
            return 0.0
        return min(self.max_delay, self.base_delay * (2 ** (n - 1)))

    def failed(self, identity: str, peer: str, why: str) -> None:
        now = self.clock()
        key = (identity, peer)
        n, last = self._fails.get(key, (0, 0.0))
        if now - last > self.forget_after:
            n = 0
        if n == 0:
            log.warning("station %s: authentication failed from %s (%s); further failures are slowed down "
                        "and not logged for %.0f s", identity, peer, why, self.forget_after)
        if len(self._fails) >= self.max_entries:
            self._fails.clear()
        self._fails[key] = (n + 1, now)

    def succeeded(self, identity: str, peer: str) -> None:
        self._fails.pop((identity, peer), None)
