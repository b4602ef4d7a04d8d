"""Redaction of secrets and masking of idTags for logs, audit and any output meant for people.

Boundary: pure functions usable from anywhere in the controller (CLI, plan output, logs, the store's
audit log). No I/O.

- ``mask_id_tag("04A2B3C4") == "****B3C4"``: keep the last 4 characters; tags of 4 characters or
  fewer are all ``*`` (the length is kept, which is fine: CiString20 lengths tell nothing).
- ``redact(detail)``: a JSON-ready deep copy where values under secret-looking keys become
  ``"[redacted]"``, values under idTag-looking keys are masked, and a configuration change whose
  ``key`` is ``AuthorizationKey`` has its ``value`` / ``old`` / ``new`` redacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

_SECRET_WORDS = ("password", "secret", "token", "authorizationkey", "authorization_key", "credential")
_SECRET_KEYS = frozenset({"key_value", "pending_key", "basic_auth", "authorization"})
_ID_TAG_WORDS = ("idtag", "id_tag")
_SECRET_CONFIG_KEYS = frozenset({"authorizationkey"})
_VALUE_FIELDS = ("value", "old", "new", "old_value", "new_value")
_PLAIN = frozenset({str, int, float, bool})  # exact types kept as they are (subclasses go through redact)


def mask_id_tag(tag: str) -> str:
    """Mask an idTag to its last 4 characters, e.g. ``"04A2B3C4"`` -> ``"****B3C4"``."""
    if len(tag) <= 4:
        return "*" * len(tag)
    return "*" * (len(tag) - 4) + tag[-4:]


def _is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_KEYS or any(word in lowered for word in _SECRET_WORDS)


def _is_id_tag_field(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _ID_TAG_WORDS)


# What a field name calls for: field names come from our own code and the OCPP schemas (a few dozen), so
# each is classified once (every audited change is redacted, in the store's writer thread). Bounded all
# the same: a payload's keys could be anything.
_KEEP, _SECRET, _ID_TAG = 0, 1, 2
_FIELD_KINDS: dict[str, int] = {}
_MAX_FIELD_KINDS = 4096


def _field_kind(name: str) -> int:
    kind = _FIELD_KINDS.get(name)
    if kind is None:
        kind = _SECRET if _is_secret_field(name) else _ID_TAG if _is_id_tag_field(name) else _KEEP
        if len(_FIELD_KINDS) < _MAX_FIELD_KINDS:
            _FIELD_KINDS[name] = kind
    return kind


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_id_tag(value)
    if isinstance(value, list | tuple):
        return [_mask_value(item) for item in value]
    return redact(value)


def redact(value: Any) -> Any:
    """Deep-copy ``value`` into JSON-ready data with secrets redacted and idTags masked."""
    if isinstance(value, Mapping):
        config_key = value.get("key")
        secret_config = isinstance(config_key, str) and config_key.lower() in _SECRET_CONFIG_KEYS
        out: dict[str, Any] = {}
        for raw_name, item in value.items():
            name = raw_name if type(raw_name) is str else str(raw_name)
            kind = _field_kind(name)
            if kind == _SECRET or (secret_config and name.lower() in _VALUE_FIELDS):
                out[name] = REDACTED
            elif kind == _ID_TAG:
                out[name] = _mask_value(item)
            elif item is None or type(item) in _PLAIN:
                out[name] = item
            else:
                out[name] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return REDACTED  # raw bytes in an audit detail are most likely key material
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
