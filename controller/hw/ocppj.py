"""OCPP-J 1.6 framing: text frame <-> Call / CallResult / CallError, with no I/O.

Role: the protocol core under ``controller.hw.connection`` (which adds sockets and asyncio). We own
the framing instead of using the ``ocpp`` library's ChargePoint (DESIGN.md §3); its enums are used
where handy. Boundary: pure functions and frozen dataclasses; nothing here validates payloads against
the OCPP schemas (that is done in tests, not per message).

Parsing is lenient with sloppy chargers: numbers as message ids, extra array elements, a missing or
``null`` payload, both spellings of FormationViolation/FormatViolation and
OccurenceConstraintViolation/OccurrenceConstraintViolation (normalised to the 1.6 spelling, which is also
the one we send), message types written as strings. ``parse`` never raises anything but ``FrameError``;
a ``FrameError`` carries the message id when one could be recovered from a CALL, so the caller can
answer with a CALLERROR; otherwise the frame is to be logged and dropped.

JSON numbers with a fraction are parsed as ``Decimal``; ``dumps`` writes ``Decimal`` exactly (its plain
string, never via float) and aware datetimes as ISO 8601 UTC ``...Z``.
"""

from __future__ import annotations

import json
import json.scanner
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any

from controller.jsonenc import compact_encoder


class MessageType(IntEnum):
    CALL = 2
    CALL_RESULT = 3
    CALL_ERROR = 4


class ErrorCode(StrEnum):
    """CALLERROR codes in their OCPP 1.6 spelling (the one we send)."""

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


_ERROR_ALIASES: dict[str, str] = {code.value.lower(): code.value for code in ErrorCode}
_ERROR_ALIASES["formatviolation"] = ErrorCode.FORMATION_VIOLATION.value
_ERROR_ALIASES["occurrenceconstraintviolation"] = ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION.value


def normalize_error_code(raw: object) -> str:
    """Canonical 1.6 spelling of a received error code; unknown strings are kept, non-strings -> Generic."""
    if not isinstance(raw, str) or not raw:
        return ErrorCode.GENERIC_ERROR.value
    return _ERROR_ALIASES.get(raw.strip().lower(), raw)


WireId = str | int | Decimal


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]
    # the id as the peer wrote it (a number from sloppy chargers); replies echo it in the same type
    wire_id: WireId | None = field(default=None, compare=False, repr=False)
    # the frame text as received (for a store that keeps raw transaction messages); "" when built locally
    raw: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]
    wire_id: WireId | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    wire_id: WireId | None = field(default=None, compare=False, repr=False)


Frame = Call | CallResult | CallError


class FrameError(ValueError):
    """A frame that is not OCPP-J. ``message_id`` is set when it could be recovered.

    ``message_type`` is the frame's type when known (2, 3, 4 or whatever number the peer sent): a
    connection answers a bad frame with a CALLERROR only when it has an id and is not itself a reply.
    """

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        *,
        message_id: str | None = None,
        message_type: int | None = None,
        wire_id: WireId | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.message_id = message_id
        self.message_type = message_type
        self.wire_id = wire_id

    @property
    def answerable(self) -> bool:
        """True when the peer expects an answer to this frame (a CALL-like frame with an id)."""
        return self.message_id is not None and self.message_type not in (
            MessageType.CALL_RESULT,
            MessageType.CALL_ERROR,
        )

    def to_call_error(self) -> CallError:
        if self.message_id is None:
            raise ValueError("no message id to answer")
        return CallError(self.message_id, self.code.value, self.description[:255], {}, self.wire_id)


# A CALL whose JSON is broken: recover the id when the frame starts like [2,"id" or [2,123
_CALL_ID_RE = re.compile(r'^\s*\[\s*"?2"?\s*,\s*(?:"((?:[^"\\]|\\.){1,64})"|(-?\d{1,20}))')


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# one decoder for every frame (json.loads with hooks would build a new one per call)
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
# The decoder's own scanner, called directly: `JSONDecoder.decode` is two Python frames and a regex match around
# it for every frame (whitespace around the text is allowed, as `decode` allows it).
_SCAN = json.scanner.make_scanner(_DECODER)  # type: ignore[arg-type]  # (typeshed: the decoder is the context)
_SPACE = re.compile(r"[ \t\n\r]*")  # what `decode` skips around the value


def _loads(text: str) -> Any:
    """`_DECODER.decode(text)`, errors included (JSONDecodeError, a ValueError, as `decode` raises them)."""
    try:
        value, end = _SCAN(text, _SPACE.match(text).end())  # type: ignore[union-attr]
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    if _SPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _wire_id(raw: object) -> tuple[str, WireId] | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        return raw, raw
    if isinstance(raw, int | Decimal):
        return str(raw), raw
    return None


def _message_type(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit() and len(raw) < 4:
        return int(raw)
    if isinstance(raw, Decimal) and raw == raw.to_integral_value() and abs(raw) < 1000:
        return int(raw)
    return None


def parse(frame: str | bytes) -> Frame:
    """Parse one websocket message into a frame; raise ``FrameError`` and nothing else."""
    try:
        return _parse(frame)
    except FrameError:
        raise
    except Exception as exc:  # a last line of defence: the parser must never take the loop down
        raise FrameError(ErrorCode.FORMATION_VIOLATION, f"unparseable frame: {type(exc).__name__}") from None


def _parse(frame: str | bytes) -> Frame:
    if isinstance(frame, bytes | bytearray | memoryview):
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "binary frame; OCPP-J uses text frames")
    try:
        data = _loads(frame)
    except (ValueError, RecursionError) as exc:
        match = _CALL_ID_RE.match(frame)
        if match is None:
            raise FrameError(ErrorCode.FORMATION_VIOLATION, "not JSON") from None
        if match.group(1) is not None:
            wire: WireId = match.group(1)
            message_id = match.group(1)
        else:
            wire, message_id = int(match.group(2)), match.group(2)
        raise FrameError(
            ErrorCode.FORMATION_VIOLATION,
            f"frame is not valid JSON: {exc}"[:200],
            message_id=message_id,
            message_type=MessageType.CALL,
            wire_id=wire,
        ) from None
    if type(data) is list and len(data) == 3 and data[0] == 3 and type(data[0]) is int:
        ident, payload = data[1], data[2]  # the usual answer: [3, "id", {...}] (what _parse_any reads it as)
        if type(ident) is str and type(payload) is dict:
            return CallResult(ident, payload, ident)
    return _parse_any(data, frame)


def _parse_any(data: Any, frame: str) -> Frame:
    if not isinstance(data, list) or len(data) < 2:
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "frame is not an OCPP-J array")
    mtype = _message_type(data[0])
    ident = _wire_id(data[1])
    if ident is None:
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "message id is missing or not a string",
                         message_type=mtype)
    message_id, wire = ident

    def fail(code: ErrorCode, description: str) -> FrameError:
        return FrameError(code, description, message_id=message_id, message_type=mtype, wire_id=wire)

    if mtype == MessageType.CALL:
        if len(data) < 3 or not isinstance(data[2], str) or not data[2]:
            raise fail(ErrorCode.PROTOCOL_ERROR, "CALL without an action name")
        payload = data[3] if len(data) > 3 else None
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise fail(ErrorCode.FORMATION_VIOLATION, "CALL payload is not a JSON object")
        return Call(message_id, data[2], payload, wire, frame)
    if mtype == MessageType.CALL_RESULT:
        payload = data[2] if len(data) > 2 else None
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise fail(ErrorCode.FORMATION_VIOLATION, "CALLRESULT payload is not a JSON object")
        return CallResult(message_id, payload, wire)
    if mtype == MessageType.CALL_ERROR:
        code = normalize_error_code(data[2] if len(data) > 2 else None)
        description = data[3] if len(data) > 3 and isinstance(data[3], str) else ""
        details = data[4] if len(data) > 4 and isinstance(data[4], dict) else {}
        return CallError(message_id, code, description, details, wire)
    raise fail(ErrorCode.PROTOCOL_ERROR, f"unknown message type {data[0]!r}"[:200])


# ---------------------------------------------------------------------------------------------- output

_DECIMAL_TOKEN = "decimal-" + secrets.token_hex(12) + "-"  # a per-process secret: no peer can forge it
_DECIMAL_RE = re.compile('"' + re.escape(_DECIMAL_TOKEN) + r'(\d+)"')


def decimal_text(value: Decimal) -> str:
    """The plain (no exponent) text of a finite Decimal, exactly: Decimal('1E+3') -> '1000'."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    return format(value, "f")


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix; seconds, or milliseconds when the value has a fraction."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: give OCPP timestamps a timezone")
    spec = "seconds" if value.microsecond == 0 else "milliseconds"
    return value.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def parse_datetime(value: object) -> datetime | None:
    """Lenient ISO 8601 (Z, offsets, any fraction length; no zone = UTC). None when unusable."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _HasDecimal(Exception):
    """Internal: the fast encoder met a Decimal; the exact (slower) path writes it."""


def _plain_default(value: object) -> object:
    if isinstance(value, Decimal):
        raise _HasDecimal()
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# one encoder for payloads without a Decimal (most frames), its C encoder built once (controller.jsonenc):
# compact, non-ASCII as is, NaN and infinities refused, `_plain_default` for datetimes and enums
_ENCODE = compact_encoder(ensure_ascii=False, allow_nan=False, default=_plain_default)


def dumps(obj: Any) -> str:
    """Compact JSON with ``Decimal`` written exactly and aware datetimes as OCPP timestamps."""
    try:
        return _ENCODE(obj)
    except _HasDecimal:
        pass
    decimals: list[str] = []

    def default(value: object) -> object:
        if isinstance(value, Decimal):
            decimals.append(decimal_text(value))
            return f"{_DECIMAL_TOKEN}{len(decimals) - 1}"
        return _plain_default(value)  # datetimes, enums, and the error for anything else

    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default)
    if decimals:
        text = _DECIMAL_RE.sub(lambda m: decimals[int(m.group(1))], text)
    return text


def call_text(message_id: str, action: str, payload: Mapping[str, Any]) -> str:
    """`encode(Call(message_id, action, payload))` without the frame object (every call the controller makes)."""
    return dumps([2, message_id, action, payload])


def encode(frame: Frame) -> str:
    """One frame as compact OCPP-J text."""
    wire: WireId = frame.wire_id if frame.wire_id is not None else frame.message_id
    if isinstance(frame, Call):
        return dumps([MessageType.CALL.value, wire, frame.action, frame.payload])
    if isinstance(frame, CallResult):
        return dumps([MessageType.CALL_RESULT.value, wire, frame.payload])
    return dumps([MessageType.CALL_ERROR.value, wire, frame.code, frame.description, frame.details])


def result_for(call: Call, payload: Mapping[str, Any]) -> CallResult:
    """The CALLRESULT answering ``call`` (echoing its id the way the peer wrote it)."""
    return CallResult(call.message_id, dict(payload), call.wire_id)


def error_for(call: Call, code: str, description: str = "", details: Mapping[str, Any] | None = None) -> CallError:
    """The CALLERROR answering ``call``."""
    return CallError(call.message_id, code, description[:255], dict(details or {}), call.wire_id)


# ------------------------------------------------------------------------------------------- logging

_SECRET_KEYS = frozenset({"authorizationkey"})
_ID_TAG_FIELDS = frozenset({"idTag", "parentIdTag"})


def mask_id_tag(id_tag: str) -> str:
    """An idTag as logs may show it: only its last 4 characters."""
    return "****" + id_tag[-4:] if len(id_tag) > 4 else "****"


def redact_for_log(value: Any) -> Any:
    """A copy of a payload safe to log: idTags masked, AuthorizationKey values removed."""
    if isinstance(value, list):
        return [redact_for_log(item) for item in value]
    if not isinstance(value, dict):
        return value
    secret = isinstance(value.get("key"), str) and value["key"].lower() in _SECRET_KEYS
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _ID_TAG_FIELDS and isinstance(item, str):
            out[key] = mask_id_tag(item)
        elif secret and key == "value":
            out[key] = "<redacted>"
        else:
            out[key] = redact_for_log(item)
    return out


def describe(frame: Frame) -> str:
    """A one-line, redacted rendering of a frame for DEBUG logs."""
    if isinstance(frame, Call):
        return f"CALL {frame.action} {frame.message_id} {dumps(redact_for_log(frame.payload))}"
    if isinstance(frame, CallResult):
        return f"CALLRESULT {frame.message_id} {dumps(redact_for_log(frame.payload))}"
    return f"CALLERROR {frame.message_id} {frame.code} {frame.description!r}"
