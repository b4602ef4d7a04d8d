"""The audit detail of an applied action: one read-only object per distinct answer, secrets redacted."""

from __future__ import annotations

import pytest


def test_an_audit_detail_is_one_read_only_object_per_distinct_action_answer() -> None:
    # a fleet-wide change audits the same detail at every station: one shared, read-only object per distinct
    # (change, phase, reason, result, error, secret, entries), secrets redacted
    from controller.reconcilers import Action, Kind, Phase
    from controller.reconcilers.actions import Change
    from controller.runtime.apply import audit_detail

    def action(_station: str, *, secret: bool = False, new: str = "600") -> Action:  # (the station is the plan's)
        return Action(Phase.DATA, Kind.CHANGE_CONFIGURATION, {"key": "HeartbeatInterval", "value": new},
                      "profile p", change=Change("HeartbeatInterval", "300", new), secret=secret)

    a1, a2 = audit_detail(action("A-1"), "Accepted"), audit_detail(action("A-2"), "Accepted")
    assert a1 is a2 and dict(a1) == {"phase": Phase.DATA.label, "reason": "profile p", "result": "Accepted",
                                     "change": {"field": "HeartbeatInterval", "old": "300", "new": "600"}}
    assert audit_detail(action("A-1"), "Rejected", "no")["error"] == "no"
    assert audit_detail(action("A-1", new="900"), "Accepted")["change"]["new"] == "900"  # type: ignore[index]
    assert audit_detail(action("A-1", secret=True), "Accepted")["change"]["new"] == "(redacted)"  # type: ignore[index]
    with pytest.raises(TypeError):
        a1["result"] = "changed"  # type: ignore[index]
