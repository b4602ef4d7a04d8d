"""The exception tree: temporary and permanent charger errors, and what they carry."""

from __future__ import annotations

from controller.hw.errors import (
    ChargeOpsError,
    ChargerError,
    ChargerRejected,
    ChargerUnavailable,
    CloseWithoutReply,
    OcppCallError,
    UnavailableReason,
)


def test_charger_errors_say_which_station_and_action_and_whether_to_retry() -> None:
    temporary = ChargerUnavailable("CP-1", "Reset", UnavailableReason.TIMEOUT, "no answer within 30s")
    permanent = ChargerRejected("CP-1", "ChangeConfiguration", status="Rejected")
    error = ChargerRejected("CP-1", "ClearCache", code="NotSupported", detail="nope")
    for exc in (temporary, permanent, error):
        assert isinstance(exc, ChargerError) and isinstance(exc, ChargeOpsError)
        assert exc.station == "CP-1"
    assert str(temporary) == "CP-1: Reset: charger unavailable (timeout): no answer within 30s"
    assert str(permanent) == "CP-1: ChangeConfiguration: refused with status Rejected"
    assert str(error) == "CP-1: ClearCache: CALLERROR NotSupported: nope"
    assert error.code == "NotSupported" and error.status is None


def test_handler_side_errors_are_chargeops_errors_but_not_charger_errors() -> None:
    for exc in (OcppCallError("FormationViolation", "bad"), CloseWithoutReply("store down")):
        assert isinstance(exc, ChargeOpsError) and not isinstance(exc, ChargerError)
