"""Configuration reconciler (controller/reconcilers/configuration.py): only differing keys are written, then
read back; capabilities, unknown keys, refusals, write-only keys and drift; the deferred Reset."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controller.reconcilers import Kind, Level, Phase, render_plan
from controller.reconcilers.observed import PendingReboot, Refusal, secret_digest

from .kit import NOW, FakeCharger, changed_keys, charger, kinds, owner, profile, repo, station

FAST_METER: dict[str, Any] = {"ocppConfiguration": {"MeterValueSampleInterval": 30}}


def fleet_repo(interval: int) -> Any:
    return repo(
        profile("fast-meter", {"ocppConfiguration": {"MeterValueSampleInterval": interval}},
                selector={"labels": {"site": "depot"}}),
        station("st-1", labels={"site": "depot"}), station("st-2", labels={"site": "depot"}),
        station("st-3", labels={"site": "office"}),
    )


def test_a_profile_key_change_writes_one_key_on_exactly_the_affected_stations_then_reads_it_back() -> None:
    before, after = fleet_repo(60), fleet_repo(30)
    chargers = {i: FakeCharger(charger(i)) for i in ("ST-1", "ST-2", "ST-3")}
    for fc in chargers.values():
        assert not fc.plan(before).actions  # the fleet matches the old revision
    plans = {i: fc.plan(after) for i, fc in chargers.items()}
    for i in ("ST-1", "ST-2"):
        assert kinds(plans[i]) == ["ChangeConfiguration", "GetConfiguration"]
        change = plans[i].actions[0]
        assert (change.payload, change.change and (change.change.old, change.change.new)) == (
            {"key": "MeterValueSampleInterval", "value": "30"}, ("60", "30"))
        assert plans[i].actions[1].payload == {"key": ["MeterValueSampleInterval"]}
    assert plans["ST-3"].actions == ()


def test_a_second_pass_after_applying_sends_nothing() -> None:
    ds = fleet_repo(30)
    fc = FakeCharger(charger("ST-1"))
    fc.apply(fc.plan(ds))
    again = fc.plan(ds)
    assert again.actions == ()
    assert again.unchanged > 0


@pytest.mark.parametrize(("declared", "reported"), [
    ({"HeartbeatInterval": 300}, {"heartbeatinterval": "0300"}),
    ({"StopTransactionOnEVSideDisconnect": True}, {"STOPTRANSACTIONONEVSIDEDISCONNECT": "TRUE"}),
    ({"MeterValuesSampledData": "Energy.Active.Import.Register,SoC"},
     {"MeterValuesSampledData": "energy.active.import.register, soc"}),
], ids=["int-and-key-case", "boolean-case", "measurand-list"])
def test_keys_compare_case_insensitively_and_values_normalised(declared: dict[str, Any],
                                                               reported: dict[str, str]) -> None:
    ds = repo(station("st-1", ocppConfiguration=declared))
    obs = charger(drop=["HeartbeatInterval"] if "heartbeatinterval" in reported else (), config=reported)
    assert FakeCharger(obs).plan(ds).actions == ()


def test_the_chargers_spelling_of_a_key_goes_on_the_wire() -> None:
    ds = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 90}))
    obs = charger(drop=["ConnectionTimeOut"], config={"CONNECTIONTIMEOUT": "60"})
    assert FakeCharger(obs).plan(ds).actions[0].payload == {"key": "CONNECTIONTIMEOUT", "value": "90"}


def test_the_heartbeat_interval_equals_the_one_given_at_boot_even_when_not_declared() -> None:
    plan = FakeCharger(charger(config={"HeartbeatInterval": "900"})).plan(repo(station("st-1")))
    assert changed_keys(plan) == ["HeartbeatInterval"]
    assert plan.actions[0].payload["value"] == "300"


def note_texts(plan: Any, level: Level | None = None) -> list[str]:
    return [n.text for n in plan.notes if level is None or n.level is level]


def test_a_key_the_charger_reports_read_only_is_skipped_with_a_note() -> None:
    ds = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 90}))
    obs = charger(readonly=["ConnectionTimeOut"])
    plan = FakeCharger(obs).plan(ds)
    assert plan.actions == ()
    assert any("read-only on this charger" in t for t in note_texts(plan, Level.WARNING))


def test_a_key_the_charger_reports_unknown_is_skipped_with_a_note() -> None:
    ds = repo(station("st-1", ocppConfiguration={"LightIntensity": 50}))
    plan = FakeCharger(charger(unknown=["LIGHTINTENSITY"])).plan(ds)
    assert plan.actions == ()
    assert note_texts(plan, Level.WARNING) == ["LightIntensity not set: the charger reports the key as unknown"]


def test_a_refused_key_is_not_retried_until_the_declared_value_changes() -> None:
    fc = FakeCharger(charger(), answers={"CONNECTIONTIMEOUT": "Rejected"})
    ds90 = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 90}))
    fc.apply(fc.plan(ds90))
    assert fc.obs.refused["CONNECTIONTIMEOUT"] == Refusal("Rejected", "90", NOW)
    again = fc.plan(ds90)
    assert again.actions == ()
    assert "answered Rejected" in note_texts(again, Level.WARNING)[0]
    ds120 = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 120}))
    assert changed_keys(fc.plan(ds120)) == ["ConnectionTimeOut"]


def test_a_key_needing_a_feature_profile_the_charger_lacks_is_skipped() -> None:
    ds = repo(station("st-1", offlineAuthorization=True))
    obs = charger(config={"SupportedFeatureProfiles": "Core,RemoteTrigger"}, local_list_version=None)
    plan = FakeCharger(obs).plan(ds)
    assert changed_keys(plan) == ["LocalAuthorizeOffline"]  # Core; LocalAuthListEnabled needs the profile
    assert any("LocalAuthListManagement feature profile" in t for t in note_texts(plan))
    assert Kind.SEND_LOCAL_LIST.value not in kinds(plan)


def test_drift_at_the_charger_is_detected_and_healed() -> None:
    ds = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 90}))
    fc = FakeCharger(charger())
    fc.apply(fc.plan(ds))
    fc.obs = charger(config={"ConnectionTimeOut": "45"}, applied=fc.obs.applied)  # changed at the charger
    plan = fc.plan(ds)
    (heal, _read) = plan.actions
    assert heal.drift and heal.reason.startswith("drift: changed at the charger to 45")
    assert heal.payload == {"key": "ConnectionTimeOut", "value": "90"}


def test_an_accepted_key_whose_read_back_was_lost_is_read_back_not_written_again() -> None:
    ds = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 90, "MeterValueSampleInterval": 30}))
    # ConnectionTimeOut=90 was accepted but its read-back never came: the store still says 45
    waiting = charger(config={"ConnectionTimeOut": "45", "MeterValueSampleInterval": "30"},
                      applied={"CONNECTIONTIMEOUT": "90"}, unconfirmed={"CONNECTIONTIMEOUT": "90"})
    plan = FakeCharger(waiting).plan(ds)
    assert kinds(plan) == ["GetConfiguration"] and plan.actions[0].payload == {"key": ["ConnectionTimeOut"]}
    assert plan.counts() == {"add": 0, "change": 0, "remove": 0}  # a read, not a change
    # with another key to write, one read-back covers both
    both = charger(config={"ConnectionTimeOut": "45", "MeterValueSampleInterval": "60"},
                   applied={"CONNECTIONTIMEOUT": "90"}, unconfirmed={"CONNECTIONTIMEOUT": "90"})
    plan = FakeCharger(both).plan(ds)
    assert kinds(plan) == ["ChangeConfiguration", "GetConfiguration"]
    assert plan.actions[0].payload == {"key": "MeterValueSampleInterval", "value": "30"}
    assert plan.actions[1].payload == {"key": ["MeterValueSampleInterval", "ConnectionTimeOut"]}
    # a value declared since then is written (what waits for a read-back is no longer wanted)
    other = repo(station("st-1", ocppConfiguration={"ConnectionTimeOut": 120, "MeterValueSampleInterval": 30}))
    plan = FakeCharger(waiting).plan(other)
    assert kinds(plan) == ["ChangeConfiguration", "GetConfiguration"]
    assert plan.actions[0].payload == {"key": "ConnectionTimeOut", "value": "120"}


def test_drift_of_a_warn_only_key_is_reported_not_healed_but_an_owner_change_is_still_written() -> None:
    spec: dict[str, Any] = {"ocppConfiguration": {"ConnectionTimeOut": 90}, "driftWarnOnly": ["ConnectionTimeOut"]}
    drifted = charger(config={"ConnectionTimeOut": "45"}, applied={"CONNECTIONTIMEOUT": "90"})
    plan = FakeCharger(drifted).plan(repo(station("st-1", **spec)))
    assert plan.actions == ()
    assert note_texts(plan, Level.WARNING) == [
        "drift: ConnectionTimeOut is 45 at the charger, declared 90 (warn-only: reported, not healed)"]
    spec["ocppConfiguration"] = {"ConnectionTimeOut": 120}
    assert changed_keys(FakeCharger(drifted).plan(repo(station("st-1", **spec)))) == ["ConnectionTimeOut"]


def test_a_write_only_key_is_compared_by_the_digest_of_what_was_sent_and_never_shown() -> None:
    ds = repo(station("st-1"))
    secret = {"AuthorizationKey": "0123456789abcdef0123456789abcdef"}
    fc = FakeCharger(charger())
    plan = fc.plan(ds, secrets=secret)
    (action,) = plan.actions  # no read-back: a write-only key cannot be read
    assert (action.phase, action.secret) == (Phase.CREDENTIALS, True)
    assert secret["AuthorizationKey"] not in str(plan.to_dict()) + render_plan([plan]) + render_plan([plan], "json")
    fc.apply(plan)
    assert fc.obs.write_only_sent == {"AUTHORIZATIONKEY": secret_digest(secret["AuthorizationKey"])}
    assert fc.plan(ds, secrets=secret).actions == ()
    assert fc.plan(ds, secrets={"AuthorizationKey": "fedcba9876543210fedcba9876543210"}).actions[0].secret


def test_read_backs_are_chunked_by_get_configuration_max_keys() -> None:
    declared = {"ConnectionTimeOut": 90, "MeterValueSampleInterval": 15, "HeartbeatInterval": 600}
    plan = FakeCharger(charger(config={"GetConfigurationMaxKeys": "2"})).plan(
        repo(station("st-1", ocppConfiguration=declared)))
    reads = [a.payload["key"] for a in plan.actions if a.kind is Kind.GET_CONFIGURATION]
    assert reads == [["ConnectionTimeOut", "HeartbeatInterval"], ["MeterValueSampleInterval"]]
    assert kinds(plan)[-2:] == ["GetConfiguration", "GetConfiguration"]


# --- RebootRequired: the deferred Reset ------------------------------------------------------------------

NIGHT = {"rebootWindows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                            "start": "02:00", "end": "04:00"}]}
PENDING = PendingReboot(NOW - dt.timedelta(hours=1), {"METERVALUESAMPLEINTERVAL": "30"})
AT_NIGHT = dt.datetime(2026, 6, 18, 1, 0, tzinfo=dt.UTC)  # 03:00 in Amsterdam (summer time)


def reboot_case(maintenance: dict[str, Any] | None, now: dt.datetime, sessions: tuple[int, ...] = ()) -> Any:
    ds = repo(station("st-1", **FAST_METER),
              base=(owner(defaults={"maintenance": maintenance} if maintenance else None),))
    obs = charger(pending_reboot=PENDING, sessions=sessions)
    return FakeCharger(obs).plan(ds, now=now)


def resets(plan: Any) -> list[Any]:
    return [a for a in plan.actions if a.kind is Kind.RESET]


def test_a_pending_reboot_waits_for_the_running_session_to_end() -> None:
    plan = reboot_case(NIGHT, AT_NIGHT, sessions=(1,))
    assert resets(plan) == []
    assert note_texts(plan, Level.DEFERRED) == [
        "reboot to apply MeterValueSampleInterval waits until the session on connector 1 ends (sessions are "
        "never cut)"]
    assert plan.actions == ()  # the key itself is not sent again while it waits for the reboot


def test_a_pending_reboot_waits_for_the_reboot_window_and_says_when_to_look_again() -> None:
    plan = reboot_case(NIGHT, NOW)  # 12:00 in Amsterdam
    assert resets(plan) == []
    assert plan.next_review_at == dt.datetime(2026, 6, 18, 0, 0, tzinfo=dt.UTC)  # 02:00 local


def test_a_pending_reboot_is_sent_inside_the_reboot_window_when_no_session_runs() -> None:
    plan = reboot_case(NIGHT, AT_NIGHT)
    (reset,) = resets(plan)
    assert (reset.phase, reset.payload, reset.effects.reboot_needed) == (Phase.RESET, {"type": "Soft"}, True)
    assert "inside the reboot window" in reset.reason
    assert plan.actions[-1] is reset


def test_after_the_maximum_deferral_the_reboot_goes_ahead_outside_the_window_but_never_cuts_a_session() -> None:
    late = PENDING.since + dt.timedelta(hours=24)
    plan = reboot_case(NIGHT, late)
    assert "maximum deferral of 24 h reached" in resets(plan)[0].reason
    assert resets(reboot_case(NIGHT, late, sessions=(2,))) == []
    assert resets(reboot_case({**NIGHT, "maxRebootDeferralHours": 48}, late)) == []


def test_reboot_during_sessions_lets_the_reset_cut_a_session_and_says_so() -> None:
    plan = reboot_case({**NIGHT, "rebootDuringSessions": True}, AT_NIGHT, sessions=(1,))
    (reset,) = resets(plan)
    assert reset.effects.affects_running_session


def test_without_reboot_windows_a_pending_reboot_goes_at_once_when_idle() -> None:
    assert len(resets(reboot_case(None, NOW))) == 1
