"""Conversions between Python values and SQLite columns, shared by the sql_*.py modules.

Boundary: pure functions. Our own times are stored as UTC text with a fixed width
(``2024-05-01T12:00:00.000000Z``) so that text order is time order and indexes can range-scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from controller.jsonenc import compact_encoder

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_UTC_TEXT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"
_SECONDS: dict[int, str] = {}  # whole UTC second -> "YYYY-MM-DDTHH:MM:SS." (the writer and the event loop share it)
_WIDTH = len("2024-05-01T12:00:00.000000Z")


def to_db_time(value: datetime) -> str:
    """Aware datetime -> fixed-width UTC text. A naive datetime is a bug: ``ValueError``."""
    if value.tzinfo is UTC:  # our own clock's times: the text up to the second is formatted once per second
        second = value.timestamp()
        if second >= 0:
            prefix = _SECONDS.get(int(second))
            if prefix is None:
                if len(_SECONDS) >= 4096:
                    _SECONDS.clear()
                prefix = _SECONDS[int(second)] = value.replace(microsecond=0).isoformat()[:-6] + "."
            micro = str(value.microsecond)
            return prefix + "000000"[len(micro):] + micro + "Z"
        return _UTC_TEXT % (value.year, value.month, value.day, value.hour, value.minute, value.second,
                            value.microsecond)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store needs timezone-aware datetimes, got naive {value!r}")
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # isoformat would not be fixed-width; never our own clock
        return utc.strftime(_FORMAT)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def opt_to_db_time(value: datetime | None) -> str | None:
    return None if value is None else to_db_time(value)


def from_db_time(text: str) -> datetime:
    """Our fixed-width UTC text -> aware datetime (fromisoformat: ~50x faster than strptime, and every
    station row read carries several times); anything else is parsed strictly by the format."""
    if len(text) == _WIDTH and text[-1] == "Z" and text[10] == "T":
        return datetime.fromisoformat(text)
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


def opt_from_db_time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


def flags_to_db(flags: Iterable[str]) -> str:
    """Anomaly flags as a sorted, duplicate-free JSON list."""
    return json.dumps(sorted(set(flags)))


def flags_from_db(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    loaded = json.loads(text)
    return tuple(str(item) for item in loaded) if isinstance(loaded, list) else ()


_COMPACT = compact_encoder()  # (controller.jsonenc: the C encoder built once, not per call)
_CANONICAL = compact_encoder(sort_keys=True, ensure_ascii=False)


def compact_json(value: object) -> str:
    """Compact JSON for values stored and read back, never compared as text (keys in the value's own order;
    `canonical_json` sorts them, which costs twice as much)."""
    return _COMPACT(value)


def canonical_json(value: object) -> str:
    """Deterministic compact JSON (sorted keys, no spaces, UTF-8 kept) for hashing and storing: what
    `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes."""
    return _CANONICAL(value)
