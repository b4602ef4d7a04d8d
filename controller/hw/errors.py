"""The exceptions chargeops raises on purpose, written out in one place.

Role: the retry contract between the charger I/O shell (``controller.hw``) and whatever drives it (the
runtime's per-station workers). Boundary: exception types and their attributes only, no behaviour.

The tree::

    ChargeOpsError                      root of every error chargeops raises on purpose
    ├── ChargerError                    a call to one charger did not succeed (.station, .action)
    │   ├── ChargerUnavailable          TEMPORARY: try again later. .reason is an UnavailableReason:
    │   │                               offline, timeout, connection_lost, replaced (a newer connection
    │   │                               of the same identity won), closed (we closed it, e.g. shutdown)
    │   └── ChargerRejected             PERMANENT for this request: the charger answered, but not with
    │                                   what we asked for: a CALLERROR (.code) or a refusal status
    │                                   (.status, e.g. Rejected, NotSupported), or a reply we could not
    │                                   use at all (.detail says why)
    ├── OcppCallError                   raised by a handler of an INCOMING call: answered to the charger
    │                                   as a CALLERROR (.code, .description, .details)
    └── CloseWithoutReply               raised by a handler of an incoming call: send no answer and close
                                        the socket (the charger keeps the message and sends it again),
                                        e.g. when the store cannot commit a transaction message

Other areas (configuration loading, the store) hang their own errors under ``ChargeOpsError``.

A timeout is ``ChargerUnavailable``, not ``ChargerRejected``: the charger may still be working on the
request, so a caller must re-read state before retrying Reset, SendLocalList or RemoteStart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ChargeOpsError(Exception):
    """Root of every error chargeops raises on purpose."""


class UnavailableReason(StrEnum):
    """Why a charger could not be reached; every one of them is temporary."""

    OFFLINE = "offline"
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"
    REPLACED = "replaced"
    CLOSED = "closed"


class ChargerError(ChargeOpsError):
    """A call to one charger did not succeed."""

    def __init__(self, station: str, action: str, message: str) -> None:
        super().__init__(f"{station}: {action}: {message}")
        self.station = station
        self.action = action


class ChargerUnavailable(ChargerError):
    """Temporary: the charger is offline, did not answer in time, or its connection went away."""

    def __init__(
        self, station: str, action: str, reason: UnavailableReason, detail: str = ""
    ) -> None:
        text = f"charger unavailable ({reason.value})"
        super().__init__(station, action, f"{text}: {detail}" if detail else text)
        self.reason = reason
        self.detail = detail


class ChargerRejected(ChargerError):
    """Permanent for this request: a CALLERROR, a refusal status, or an unusable reply."""

    def __init__(
        self,
        station: str,
        action: str,
        *,
        status: str | None = None,
        code: str | None = None,
        detail: str = "",
    ) -> None:
        if code is not None:
            text = f"CALLERROR {code}"
        elif status is not None:
            text = f"refused with status {status}"
        else:
            text = "unusable reply"
        super().__init__(station, action, f"{text}: {detail}" if detail else text)
        self.status = status
        self.code = code
        self.detail = detail


class OcppCallError(ChargeOpsError):
    """Raised by an incoming-call handler; the connection answers it as a CALLERROR.

    ``code`` is an OCPP 1.6 error code (see ``controller.hw.ocppj.ErrorCode``).
    """

    def __init__(self, code: str, description: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details: dict[str, Any] = dict(details or {})


class CloseWithoutReply(ChargeOpsError):
    """Raised by an incoming-call handler: do not answer, close the connection with ``code``."""

    def __init__(self, reason: str = "", code: int = 1011) -> None:
        super().__init__(reason or "closing without reply")
        self.reason = reason
        self.code = code
