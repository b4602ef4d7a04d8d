"""The effective settings of a station (controller/config/effective.py): owner defaults < profiles (priority,
then name) < station < EVSE, profile selection, and the OCPP keys chargeops derives itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from controller.config import BootInfo, DesiredState, EffectiveStation, effective_station

from .ownerrepo import Doc, desired, evse, group, owner, policy, profile, station, tariff

LAYERS = ("owner", "profile", "station", "evse")
CREDS = {"authorizationKey": {"env": "KEY_ST_1"}}

# setting -> (value per layer, how to read the effective value); EVSE values only for EVSE-level settings
Reader = Callable[[EffectiveStation], Any]
SETTINGS: dict[str, tuple[tuple[Any, ...], Reader]] = {
    "tariff": (("t-owner", "t-profile", "t-station", "t-evse"), lambda e: e.evses[0].tariff),
    "reservationPolicy": (("r-owner", "r-profile", "r-station", "r-evse"), lambda e: e.evses[0].reservation_policy),
    "availability": (("inoperative", "operative", "inoperative", "operative"), lambda e: e.evses[0].availability),
    "access": (tuple({"mode": "restricted", "groups": [f"g-{x}"]} for x in LAYERS),
               lambda e: {"mode": e.evses[0].access.mode, "groups": list(e.evses[0].access.groups)}),
    "offlineAuthorization": ((True, False, True), lambda e: e.offline_authorization),
    "securityProfile": ((1, 2, 0), lambda e: e.security_profile),
    "ocppConfiguration": (({"HeartbeatInterval": 100}, {"HeartbeatInterval": 200}, {"HeartbeatInterval": 300}),
                          lambda e: {"HeartbeatInterval": int(e.ocpp_configuration["HeartbeatInterval"])}),
    "vendorConfiguration": (({"LedMode": "a"}, {"LedMode": "b"}, {"LedMode": "c"}),
                            lambda e: dict(e.vendor_configuration)),
    "driftWarnOnly": ((["LIGHTINTENSITY"], ["CONNECTIONTIMEOUT"], ["METERVALUESAMPLEINTERVAL"]),
                      lambda e: sorted(e.drift_warn_only)),
    "maintenance": (tuple({"maxRebootDeferralHours": h} for h in (1, 2, 3)),
                    lambda e: {"maxRebootDeferralHours": e.maintenance.max_reboot_deferral_hours}),
}


def support_docs() -> list[Doc]:
    """Every tariff, policy and group the precedence table refers to."""
    docs: list[Doc] = []
    for layer in LAYERS:
        docs += [tariff(f"t-{layer}"), policy(f"r-{layer}", reservable=False), group(f"g-{layer}")]
    return docs


def layered_repo(setting: str, depth: int) -> DesiredState:
    """A repository where the first `depth` layers set `setting` to their own value."""
    values, _ = SETTINGS[setting]
    owner_defaults = {setting: values[0]} if depth >= 1 else {}
    prof_settings = {setting: values[1]} if depth >= 2 else {"ocppConfiguration": {"ConnectionTimeOut": 90}}
    station_spec: dict[str, Any] = {"credentials": CREDS}
    if depth >= 3:
        station_spec[setting] = values[2]
    evse_spec = {setting: values[3]} if depth >= 4 else {}
    return desired(
        owner(defaults=owner_defaults), *support_docs(),
        profile("fleet", prof_settings, selector={"names": ["st-1"]}),
        station("st-1", evses=[evse(1, **evse_spec)], **station_spec),
    )


CASES = [(s, depth) for s, (values, _) in SETTINGS.items() for depth in range(1, len(values) + 1)]


@pytest.mark.parametrize(("setting", "depth"), CASES, ids=[f"{s}-{LAYERS[d - 1]}-wins" for s, d in CASES])
def test_each_setting_is_taken_from_the_highest_layer_that_sets_it(setting: str, depth: int) -> None:
    ds = layered_repo(setting, depth)
    values, read = SETTINGS[setting]
    eff = effective_station(ds, ds.stations["st-1"])
    assert read(eff) == values[depth - 1]
    assert eff.profiles == ("fleet",)


def test_a_setting_nobody_sets_gets_the_built_in_default() -> None:
    ds = desired(owner(), station("st-1"))
    eff = effective_station(ds, ds.stations["st-1"])
    assert (eff.tariff, eff.reservation_policy, eff.offline_authorization, eff.security_profile) == (
        None, None, False, 0)
    assert eff.access.mode == "public"
    assert eff.evses[0].availability == "operative"
    assert eff.heartbeat_interval == 300


def test_an_evse_without_its_own_setting_inherits_the_stations() -> None:
    ds = desired(owner(), tariff("a"), tariff("b"),
                 station("st-1", tariff="a", evses=[evse(1), evse(2, tariff="b")]))
    eff = effective_station(ds, ds.stations["st-1"])
    assert [(e.id, e.tariff) for e in eff.evses] == [(1, "a"), (2, "b")]


# --- profiles: order and selection ------------------------------------------------------------------


def hb(value: int) -> Doc:
    return {"ocppConfiguration": {"HeartbeatInterval": value}}


def test_the_profile_with_the_higher_priority_wins_whatever_its_name() -> None:
    ds = desired(owner(), station("st-1"),
                 profile("aaa-high", hb(600), priority=10, selector={"names": ["st-1"]}),
                 profile("zzz-low", hb(60), priority=-5, selector={"names": ["st-1"]}))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.profiles == ("zzz-low", "aaa-high")  # lowest precedence first
    assert eff.heartbeat_interval == 600


def test_profiles_of_equal_priority_apply_in_name_order_so_the_later_name_wins() -> None:
    ds = desired(owner(), station("st-1"),
                 profile("beta", hb(200), selector={"names": ["st-1"]}),
                 profile("alpha", hb(100), selector={"names": ["st-1"]}))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.profiles == ("alpha", "beta")
    assert eff.heartbeat_interval == 200


def test_profiles_merge_setting_by_setting_not_as_a_whole() -> None:
    ds = desired(owner(), tariff("t"), station("st-1"),
                 profile("low", {"tariff": "t", "ocppConfiguration": {"HeartbeatInterval": 100,
                                                                      "ConnectionTimeOut": 90}},
                         selector={"names": ["st-1"]}),
                 profile("high", {"ocppConfiguration": {"HeartbeatInterval": 200}}, priority=1,
                         selector={"names": ["st-1"]}))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.tariff == "t"
    assert eff.ocpp_configuration["HeartbeatInterval"] == "200"
    assert eff.ocpp_configuration["ConnectionTimeOut"] == "90"


def selected(ds: DesiredState, name: str, boot: BootInfo | None = None) -> tuple[str, ...]:
    return effective_station(ds, ds.stations[name], boot).profiles


def test_a_profile_selects_stations_by_name() -> None:
    ds = desired(owner(), station("st-1"), station("st-2"), profile("p", hb(60), selector={"names": ["st-2"]}))
    assert (selected(ds, "st-1"), selected(ds, "st-2")) == ((), ("p",))


def test_a_profile_selects_stations_carrying_all_its_labels() -> None:
    ds = desired(owner(),
                 station("both", labels={"power": "dc", "level": "0"}),
                 station("one", labels={"power": "dc", "level": "1"}),
                 station("none"),
                 profile("p", hb(60), selector={"labels": {"power": "dc", "level": "0"}}))
    assert [selected(ds, n) for n in ("both", "one", "none")] == [("p",), (), ()]


def test_name_and_label_criteria_must_both_match() -> None:
    ds = desired(owner(), station("st-1", labels={"power": "dc"}), station("st-2", labels={"power": "dc"}),
                 profile("p", hb(60), selector={"names": ["st-1"], "labels": {"power": "ac"}}),
                 profile("q", hb(60), selector={"names": ["st-2"], "labels": {"power": "dc"}}))
    assert (selected(ds, "st-1"), selected(ds, "st-2")) == ((), ("q",))


@pytest.mark.parametrize(
    ("boot", "applies"),
    [
        (BootInfo("Alfen BV", "NG910-60023", "5.8.1"), True),
        (BootInfo("ALFEN BV", "ng910-60023", "5.8.1"), True),  # globs compare case-insensitively
        (BootInfo("alfen", "NG920", "6.0.0"), True),
        (BootInfo("Alfen BV", "NG910", "4.9.0"), False),  # firmware glob 5.* / 6.* not matched
        (BootInfo("ABB", "NG910", "5.0"), False),
        (BootInfo("Alfen BV", "XNG910", "5.0"), False),  # the glob is anchored
    ],
)
def test_a_boot_selector_matches_vendor_model_and_firmware_globs(boot: BootInfo, applies: bool) -> None:
    ds = desired(owner(), station("st-1"),
                 profile("alfen", hb(60), selector={"boot": {"vendor": "alfen*", "model": "NG9?0*",
                                                             "firmware": "[56].*"}}))
    eff = effective_station(ds, ds.stations["st-1"], boot)
    assert eff.profiles == (("alfen",) if applies else ())
    assert eff.pending_boot_profiles == ()


def test_a_boot_selected_profile_is_pending_until_the_charger_has_booted() -> None:
    ds = desired(owner(), station("st-1", labels={"power": "ac"}), station("st-2", labels={"power": "dc"}),
                 profile("alfen-ac", hb(60), selector={"labels": {"power": "ac"}, "boot": {"vendor": "Alfen*"}}))
    before = effective_station(ds, ds.stations["st-1"])
    assert (before.profiles, before.pending_boot_profiles, before.heartbeat_interval) == ((), ("alfen-ac",), 300)
    other = effective_station(ds, ds.stations["st-2"])  # its labels already rule the profile out
    assert other.pending_boot_profiles == ()
    assumed = effective_station(ds, ds.stations["st-1"], assume_boot_profiles=True)
    assert (assumed.profiles, assumed.pending_boot_profiles, assumed.heartbeat_interval) == (
        ("alfen-ac",), (), 60)


def test_a_station_can_name_profiles_that_would_not_select_it() -> None:
    ds = desired(owner(), station("st-1", profiles=["manual", "dc-only"], labels={"power": "ac"}),
                 profile("manual", hb(60)),
                 profile("dc-only", {"ocppConfiguration": {"ConnectionTimeOut": 30}},
                         selector={"labels": {"power": "dc"}}),
                 profile("unused", hb(900)))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.profiles == ("dc-only", "manual")
    assert eff.heartbeat_interval == 60


def test_a_profile_without_selector_applies_to_no_station_unless_named() -> None:
    ds = desired(owner(), station("st-1"), profile("manual", hb(60)))
    assert selected(ds, "st-1") == ()


# --- OCPP keys ---------------------------------------------------------------------------------------


def test_configuration_keys_merge_case_insensitively_under_their_canonical_name() -> None:
    ds = desired(owner(defaults={"ocppConfiguration": {"HEARTBEATINTERVAL": 100, "connectiontimeout": 45}}),
                 profile("p", {"ocppConfiguration": {"heartbeatinterval": 200}}, selector={"names": ["st-1"]}),
                 station("st-1", ocppConfiguration={"HeartbeatInterval": 300}))
    eff = effective_station(ds, ds.stations["st-1"])
    keys = [k for k in eff.ocpp_configuration if k.upper() in ("HEARTBEATINTERVAL", "CONNECTIONTIMEOUT")]
    assert sorted(keys) == ["ConnectionTimeOut", "HeartbeatInterval"]
    assert eff.ocpp_configuration["HeartbeatInterval"] == "300"
    assert eff.ocpp_configuration["ConnectionTimeOut"] == "45"


def test_the_heartbeat_interval_comes_from_the_declared_configuration() -> None:
    ds = desired(owner(defaults={"ocppConfiguration": {"HeartbeatInterval": "900"}}), station("st-1"))
    assert effective_station(ds, ds.stations["st-1"]).heartbeat_interval == 900


def test_values_are_sent_as_ocpp_text() -> None:
    ds = desired(owner(), station("st-1", ocppConfiguration={"StopTransactionOnEVSideDisconnect": True,
                                                             "MeterValueSampleInterval": 60}))
    config = effective_station(ds, ds.stations["st-1"]).ocpp_configuration
    assert (config["StopTransactionOnEVSideDisconnect"], config["MeterValueSampleInterval"]) == ("true", "60")


def derived(eff: EffectiveStation) -> dict[str, tuple[str, str]]:
    return {k: (eff.ocpp_configuration[k], why) for k, why in eff.derived_keys.items()}


def test_offline_authorization_on_enables_the_local_list() -> None:
    ds = desired(owner(), station("st-1", offlineAuthorization=True))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.offline_authorization
    assert derived(eff) == {
        "LocalAuthListEnabled": ("true", "offlineAuthorization is true"),
        "LocalAuthorizeOffline": ("true", "offlineAuthorization is true"),
    }


def test_offline_authorization_off_disables_every_offline_path() -> None:
    ds = desired(owner(), station("st-1", offlineAuthorization=False))
    eff = effective_station(ds, ds.stations["st-1"])
    assert derived(eff) == {k: ("false", "offlineAuthorization is false") for k in (
        "LocalAuthListEnabled", "LocalAuthorizeOffline", "AllowOfflineTxForUnknownId")}


def test_a_station_that_is_not_activated_is_inoperative_and_never_authorizes_offline() -> None:
    ds = desired(owner(), station("st-1", activation={"plan": "standard", "activated": False},
                                  offlineAuthorization=True, evses=[evse(1), evse(2, availability="operative")]))
    eff = effective_station(ds, ds.stations["st-1"])
    assert not eff.operative
    assert not eff.offline_authorization
    assert [e.availability for e in eff.evses] == ["inoperative", "inoperative"]
    assert derived(eff)["LocalAuthListEnabled"] == ("false", "the station is not activated")


def test_a_station_without_activation_is_not_activated() -> None:
    spec = station("st-1")
    del spec["spec"]["activation"]
    ds = desired(owner(), spec)
    assert not effective_station(ds, ds.stations["st-1"]).operative


def test_de_activating_a_station_overrides_declared_offline_keys_without_an_error() -> None:
    docs = [owner(defaults={"offlineAuthorization": True, "ocppConfiguration": {"LocalAuthListEnabled": True}})]
    active = desired(*docs, station("st-1"))
    assert effective_station(active, active.stations["st-1"]).ocpp_configuration["LocalAuthListEnabled"] == "true"
    ds = desired(*docs, station("st-1", activation={"plan": "standard", "activated": False}))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.ocpp_configuration["LocalAuthListEnabled"] == "false"
    assert eff.conflicts == ()


def test_restricted_access_stops_invalid_cards_and_skips_local_pre_authorization() -> None:
    ds = desired(owner(), group("staff"),
                 station("st-1", evses=[evse(1), evse(2, access={"mode": "restricted", "groups": ["staff"]})]))
    eff = effective_station(ds, ds.stations["st-1"])
    assert derived(eff)["StopTransactionOnInvalidId"] == ("true", "access is restricted")
    assert derived(eff)["LocalPreAuthorize"] == ("false", "access is restricted")


def test_reservation_only_evses_get_the_same_protection_as_restricted_ones() -> None:
    ds = desired(owner(), policy("bays"), station("st-1", evses=[evse(1, reservationPolicy="bays")]))
    eff = effective_station(ds, ds.stations["st-1"])
    why = "an EVSE can only be used with a reservation"
    assert derived(eff)["StopTransactionOnInvalidId"] == ("true", why)
    assert derived(eff)["LocalPreAuthorize"] == ("false", why)


def test_public_stations_without_reservation_only_evses_leave_invalid_id_handling_to_the_owner() -> None:
    ds = desired(owner(), policy("walk-in", walkIns=True),
                 station("st-1", reservationPolicy="walk-in", ocppConfiguration={"LocalPreAuthorize": True}))
    eff = effective_station(ds, ds.stations["st-1"])
    assert "StopTransactionOnInvalidId" not in eff.derived_keys
    assert eff.ocpp_configuration["LocalPreAuthorize"] == "true"
    assert eff.conflicts == ()


def test_a_declared_key_that_contradicts_a_derived_one_is_a_conflict_and_the_derived_value_is_kept() -> None:
    ds = desired(owner(), group("staff"), station("st-1", access={"mode": "restricted", "groups": ["staff"]}))
    st = ds.stations["st-1"]
    # validation refuses this declaration (see test_semantic), so it is put on the model directly
    declared = {"localpreauthorize": "true", "StopTransactionOnInvalidId": "true"}
    st = dataclasses.replace(st, settings=dataclasses.replace(st.settings, ocpp_configuration=declared))
    eff = effective_station(ds, st)
    assert eff.conflicts == (("LocalPreAuthorize", "true", "false", "access is restricted"),)
    assert eff.ocpp_configuration["LocalPreAuthorize"] == "false"
    assert eff.ocpp_configuration["StopTransactionOnInvalidId"] == "true"


def test_an_agreeing_declared_key_is_not_a_conflict_whatever_its_spelling() -> None:
    ds = desired(owner(), station("st-1", offlineAuthorization=True,
                                  ocppConfiguration={"localauthlistenabled": "TRUE"}))
    eff = effective_station(ds, ds.stations["st-1"])
    assert eff.conflicts == ()
    assert [k for k in eff.ocpp_configuration if k.upper() == "LOCALAUTHLISTENABLED"] == ["LocalAuthListEnabled"]


def test_without_boot_selectors_boot_information_shares_one_entry_per_station() -> None:
    """The loader's validation (no boot information) and the reconciler (each charger's) plan with the same
    effective settings object when no profile selects by boot information; with one that does, they differ."""
    plain = desired(owner(), station("st-1", labels={"power": "ac"}),
                    profile("ac", hb(60), selector={"labels": {"power": "ac"}}))
    booted = BootInfo("Alfen BV", "NG920-60503", "5.8.1")
    first = effective_station(plain, plain.stations["st-1"])
    assert effective_station(plain, plain.stations["st-1"], booted) is first
    assert effective_station(plain, plain.stations["st-1"], assume_boot_profiles=True) is first
    assert first.profiles == ("ac",) and first.heartbeat_interval == 60
    by_boot = desired(owner(), station("st-1", labels={"power": "ac"}),
                      profile("alfen-ac", hb(60), selector={"labels": {"power": "ac"}, "boot": {"vendor": "Alfen*"}}))
    unknown = effective_station(by_boot, by_boot.stations["st-1"])
    known = effective_station(by_boot, by_boot.stations["st-1"], booted)
    assert unknown is not known
    assert (unknown.profiles, known.profiles) == ((), ("alfen-ac",))


def test_stations_sharing_profiles_each_get_their_own_settings_over_the_shared_merge() -> None:
    """The defaults and a set of profiles are merged once and shared; a station's own settings still win
    key by key over it, and a station without settings of its own gets exactly the shared values."""
    ds = desired(owner(defaults={"ocppConfiguration": {"HeartbeatInterval": 100, "ConnectionTimeOut": 45},
                                 "securityProfile": 1}),
                 profile("low", {"ocppConfiguration": {"MeterValueSampleInterval": 30, "heartbeatinterval": 200}},
                         selector={"names": ["st-1", "st-2", "st-3"]}, priority=1),
                 profile("high", {"ocppConfiguration": {"MeterValueSampleInterval": 60}, "securityProfile": 2},
                         selector={"names": ["st-1", "st-2"]}, priority=2),
                 station("st-1", credentials=CREDS),
                 station("st-2", ocppConfiguration={"CONNECTIONTIMEOUT": 20}, securityProfile=0),
                 station("st-3", credentials=CREDS))
    one, two, three = (effective_station(ds, ds.stations[n]) for n in ("st-1", "st-2", "st-3"))
    pick = ("HeartbeatInterval", "ConnectionTimeOut", "MeterValueSampleInterval")
    assert [one.ocpp_configuration[k] for k in pick] == ["200", "45", "60"]
    assert one.security_profile == 2 and one.profiles == ("low", "high")
    assert [two.ocpp_configuration[k] for k in pick] == ["200", "20", "60"]
    assert two.security_profile == 0
    assert "CONNECTIONTIMEOUT" not in two.ocpp_configuration  # merged under the canonical name
    assert [three.ocpp_configuration[k] for k in pick] == ["200", "45", "30"]
    assert three.security_profile == 1 and three.profiles == ("low",)
    assert effective_station(ds, ds.stations["st-1"]) is one  # memoised per desired state and station


def test_stations_alike_share_their_effective_settings_and_each_gets_what_merging_its_own_layers_gives() -> None:
    from pathlib import Path

    from controller.config import load_desired
    from controller.config.effective import _merged_station, matching_profiles

    alike = [station(f"st-{i}", labels={"fleet": "a"}) for i in range(1, 4)]
    different = [
        station("own-settings", labels={"fleet": "a"}, ocppConfiguration={"ConnectionTimeOut": 30}),
        station("two-evses", labels={"fleet": "a"}, evses=[evse(1), evse(2)]),
        station("evse-tariff", labels={"fleet": "a"}, evses=[evse(1, tariff="t-evse")]),
        station("not-activated", labels={"fleet": "a"}, activation={"plan": "standard", "activated": False}),
        station("other-fleet", labels={"fleet": "b"}),
    ]
    repo = desired(owner(), *support_docs(), profile("fleet-a", {"ocppConfiguration": {"HeartbeatInterval": 120}},
                                                     selector={"labels": {"fleet": "a"}}), *alike, *different)
    examples = Path(__file__).parents[2] / "examples" / "owner-configs"
    for state in (repo, load_desired([examples / "workplace-garage"]), load_desired([examples / "town-curbside"])):
        for st in state.stations.values():
            applied, pending = matching_profiles(state, st, None)
            assert effective_station(state, st) == _merged_station(state, st, applied, pending), st.name
    effs = [effective_station(repo, repo.stations[s["metadata"]["name"]]) for s in alike]
    assert [e.station.name for e in effs] == ["st-1", "st-2", "st-3"]
    assert all(e.ocpp_configuration is effs[0].ocpp_configuration and e.evses is effs[0].evses for e in effs)
    for s in different:  # each of these differs from the alike ones in something the merge reads
        eff = effective_station(repo, repo.stations[s["metadata"]["name"]])
        assert eff.ocpp_configuration is not effs[0].ocpp_configuration or eff.evses is not effs[0].evses
    assert effective_station(repo, repo.stations["evse-tariff"]).evses[0].tariff == "t-evse"
    assert effective_station(repo, repo.stations["not-activated"]).evses[0].availability == "inoperative"


def test_the_per_state_cache_keeps_one_table_per_recent_state_and_lets_old_ones_go() -> None:
    from controller.config.memo import PerDesiredState

    memo = PerDesiredState(states=2)
    a, b, c = object(), object(), object()
    ta = memo.table(a)
    ta["k"] = 1
    assert memo.table(a) is ta  # the same table, asked again (the fast path)
    tb = memo.table(b)
    assert tb is not ta and memo.table(a) is ta  # back and forth between two states
    memo.table(c)  # a third state: the least recently used one (b) goes
    assert memo.table(a) is ta and memo.table(b) is not tb and memo.table(b) == {}
