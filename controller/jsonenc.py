"""Compact JSON encoders built once, for the hot paths that encode a small value per message or row.

`json.dumps` with options builds a `JSONEncoder` per call, and `JSONEncoder.encode` builds the C encoder per
call (and wraps it in two Python frames); for a few hundred bytes that is most of the cost. `compact_encoder`
builds the C encoder once and returns a function that writes exactly what
`json.dumps(value, separators=(",", ":"), ...)` writes with the same options.

Without the circular-reference check: the values encoded are trees built by this program (a cycle ends in
RecursionError rather than ValueError), and the check's bookkeeping would be shared by every thread using the
encoder. Boundary: pure; used by `controller.hw.ocppj` (frames) and `controller.store` (stored values).
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable


def not_serialisable(value: object) -> object:
    """The `default` of json's own encoder: a TypeError with json's wording."""
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def compact_encoder(*, sort_keys: bool = False, ensure_ascii: bool = True, allow_nan: bool = True,
                    default: Callable[[object], object] = not_serialisable) -> Callable[[object], str]:
    """`json.JSONEncoder(separators=(",", ":"), sort_keys=..., ensure_ascii=..., allow_nan=..., default=...)
    .encode`, with its C encoder built once."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the _json accelerator
        return json.JSONEncoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii, allow_nan=allow_nan,
                                default=default, separators=(",", ":")).encode
    strings = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    encode = make(None, default, strings, None, ":", ",", sort_keys, False, allow_nan)
    return lambda value: "".join(encode(value, 0))
