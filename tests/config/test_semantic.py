"""Cross-document rules (controller/config/semantic.py): each rule once broken and once kept."""

from __future__ import annotations

import json

import pytest

from controller.config import Diagnostic, LoadResult, validate_sources
from controller.config.pricing_display import default_price_value

from .ownerrepo import (
    Doc,
    Quoted,
    card,
    card_list,
    codes,
    desired,
    dump,
    evse,
    group,
    load,
    only,
    owner,
    policy,
    profile,
    station,
    tariff,
)

PUBLIC: Doc = {"visibility": "public", "address": {"street": "Vredenburg 40", "city": "Utrecht", "country": "NL"},
          "coordinates": {"latitude": 52.0907, "longitude": 5.1214}}


def assert_valid(result: LoadResult) -> None:
    assert [f"{d.location()} {d.code}: {d.message}" for d in result.errors] == []


def one(result: LoadResult, code: str) -> Diagnostic:
    found = only(result, code)
    assert len(found) == 1, [f"{d.location()} {d.code}: {d.message}" for d in result.diagnostics]
    return found[0]


# --- references ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("docs", "file", "field", "hint"),
    [
        ([tariff("standard"), station(tariff="standrad")], "station-st-1.yaml", "spec.tariff",
         'did you mean "standard"?'),
        ([policy("visitor-bays"), station(evses=[evse(1, reservationPolicy="visitor-bay")])],
         "station-st-1.yaml", "spec.evses[0].reservationPolicy", 'did you mean "visitor-bays"?'),
        ([group("employees"), station(access={"mode": "restricted", "groups": ["employes"]})],
         "station-st-1.yaml", "spec.access.groups[0]", 'did you mean "employees"?'),
        ([station(activation={"plan": "standart"})], "station-st-1.yaml", "spec.activation.plan",
         'did you mean "standard"?'),
        ([profile("dc-fast", {}), station(profiles=["dc-fats"])], "station-st-1.yaml", "spec.profiles[0]",
         'did you mean "dc-fast"?'),
        ([station("l1-01"), profile("p", {}, selector={"names": ["l1-10"]})], "stationprofile-p.yaml",
         "spec.selector.names[0]", 'did you mean "l1-01"?'),
        ([group("staff", includes=["employes"]), group("employees")], "accessgroup-staff.yaml",
         "spec.includes[0]", 'did you mean "employees"?'),
        ([group("employees"), card_list("cards", "employes", card("04A3B2C1D0E9F8"))], "cardlist-cards.yaml",
         "spec.group", 'did you mean "employees"?'),
        ([group("employees"), tariff(groupPrices=[{"group": "employes", "free": True}])],
         "tariff-standard.yaml", "spec.groupPrices[0].group", 'did you mean "employees"?'),
        ([group("visitors"), policy("bays", allowedGroups=["visitor"])], "reservationpolicy-bays.yaml",
         "spec.allowedGroups[0]", 'did you mean "visitors"?'),
        ([group("visitors"), station(visibility="private", publishAllowedTo=["visiters"])], "station-st-1.yaml",
         "spec.publishAllowedTo[0]", 'did you mean "visitors"?'),
        ([station(tariff="zzz")], "station-st-1.yaml", "spec.tariff", "no tariff is declared yet"),
        ([tariff("a"), tariff("b"), station(tariff="zzz")], "station-st-1.yaml", "spec.tariff",
         "declare it, or use one of: a, b"),
    ],
    ids=["tariff", "evse-policy", "access-group", "plan", "station-profile", "profile-selector-name",
         "group-include", "card-list-group", "group-price", "policy-group", "publish-allowed-to",
         "nothing-declared", "nothing-close"],
)
def test_an_unknown_reference_is_reported_at_its_field_with_the_closest_name(
        docs: list[Doc], file: str, field: str, hint: str) -> None:
    result = load(owner(), *docs)
    d = one(result, "unknown-reference")
    assert (d.file, d.field, d.hint) == (file, field, hint)
    assert d.line is not None


def test_known_references_are_accepted() -> None:
    assert_valid(load(owner(), tariff(), group("employees"), group("staff", includes=["employees"]),
                      policy("bays", allowedGroups=["staff"]), profile("dc", {}),
                      station(tariff="standard", profiles=["dc"], visibility="private", publishAllowedTo=["staff"],
                              evses=[evse(1, reservationPolicy="bays",
                                          access={"mode": "restricted", "groups": ["staff"]})])))


def test_a_reference_to_a_document_that_failed_its_schema_is_not_reported_again() -> None:
    result = load(owner(), tariff(price={"perKwh": "a lot"}), group("staff", unknownField=1),
                  card_list("cards", "staff", card("04A3B2C1D0E9F8")),
                  station(tariff="standard", access={"mode": "restricted", "groups": ["staff"]}))
    assert sorted(codes(result)) == ["invalid-value", "unknown-field"]


def test_a_card_list_for_a_broken_card_list_group_does_not_cascade() -> None:
    broken = card_list("cards", "visitors", {"idTag": Quoted("04A3B2C1D0E9F8")})  # driver missing
    result = load(owner(), broken, station(access={"mode": "restricted", "groups": ["visitors"]}))
    assert codes(result) == ["missing-field"]


# --- uniqueness -------------------------------------------------------------------------------------------


def test_two_documents_of_one_kind_with_the_same_name_are_reported_at_the_second() -> None:
    result = validate_sources([("owner.yaml", dump(owner()).encode()), ("a.yaml", dump(tariff()).encode()),
                               ("b.yaml", dump(tariff(price={"perKwh": "0.40"})).encode())])
    d = one(result, "duplicate-name")
    assert (d.file, d.field) == ("b.yaml", "metadata.name")
    assert "first in a.yaml" in d.message


def test_the_same_name_in_two_different_kinds_is_fine() -> None:
    assert_valid(load(owner(), tariff("visitors"), group("visitors"), policy("visitors", reservable=False)))


def test_station_identities_are_unique_case_insensitively() -> None:
    result = load(owner(), station("st-1", "PCG-UTR-01"), station("st-2", "pcg-utr-01"))
    d = one(result, "duplicate-identity")
    assert (d.file, d.field) == ("station-st-2.yaml", "spec.identity")
    assert_valid(load(owner(), station("st-1", "PCG-UTR-01"), station("st-2", "PCG-UTR-02")))


def test_id_tags_are_unique_case_insensitively_across_groups_and_card_lists() -> None:
    result = load(owner(), group("employees", card("04a3b2c1d0e9f8", "drv-1")),
                  card_list("more", "employees", card("NLEVB000123456", "drv-2"), card("04A3B2C1D0E9F8", "drv-3")))
    d = one(result, "duplicate-idtag")
    assert (d.file, d.field) == ("cardlist-more.yaml", "spec.cards[1].idTag")
    assert "**********E9F8" in d.message
    assert_valid(load(owner(), group("employees", card("04A3B2C1D0E9F8")), group("visitors", card("04A3B2C1D0E9F9"))))


def test_a_duplicate_evse_id_is_reported_at_the_second_evse() -> None:
    result = load(owner(), station(evses=[evse(1), evse(2), evse(1)]))
    assert one(result, "duplicate-evse").field == "spec.evses[2].id"
    assert_valid(load(owner(), station(evses=[evse(1), evse(2)])))


def test_a_group_cycle_is_reported_once_at_the_include_that_closes_it() -> None:
    result = load(owner(), group("a", includes=["b"]), group("b", includes=["c"]), group("c", includes=["a"]),
                  group("self", includes=["self"]))
    cycles = only(result, "group-cycle")
    assert [(d.file, d.field) for d in cycles] == [("accessgroup-c.yaml", "spec.includes[0]"),
                                                   ("accessgroup-self.yaml", "spec.includes[0]")]
    assert cycles[0].message.endswith("a -> b -> c -> a")


def test_nested_groups_without_a_cycle_are_accepted() -> None:
    assert_valid(load(owner(), group("a", includes=["b", "c"]), group("b", includes=["c"]), group("c")))


# --- money --------------------------------------------------------------------------------------------


def test_a_paid_tariff_needs_billing_enabled() -> None:
    result = load(owner(billing=False), tariff(price={"sessionFee": "0.50"}))
    assert one(result, "paid-tariff-needs-billing").field == "spec.price"


@pytest.mark.parametrize(
    "spec",
    [
        {"price": {}, "minPrice": "1.00"},
        {"price": {}, "windows": [{"name": "peak", "days": ["mon"], "start": "08:00", "end": "10:00",
                                   "price": {"perHour": "1"}}]},
        {"price": {}, "groupPrices": [{"group": "visitors", "price": {"perKwh": "0.30"}}]},
        {"price": {"idle": {"perHour": "6.00", "graceMinutes": 60}}},
    ],
    ids=["min-price", "window", "group-price", "idle-fee"],
)
def test_any_way_of_charging_money_counts_as_paid(spec: Doc) -> None:
    result = load(owner(billing=False), group("visitors"), tariff(**spec))
    assert codes(result) == ["paid-tariff-needs-billing"]


def test_a_free_tariff_needs_no_billing() -> None:
    assert_valid(load(owner(billing=False), group("employees"),
                      tariff(price={"perKwh": "0"}, groupPrices=[{"group": "employees", "free": True}])))


def test_a_reservation_fee_or_no_show_fee_needs_billing_enabled() -> None:
    result = load(owner(billing=False), policy("a", fee="1.00"), policy("b", noShowFee="5"), policy("c", fee="0"))
    assert [(d.file, d.field) for d in only(result, "paid-tariff-needs-billing")] == [
        ("reservationpolicy-a.yaml", "spec.fee"), ("reservationpolicy-b.yaml", "spec.noShowFee")]
    assert_valid(load(owner(billing=True), policy("a", fee="1.00", noShowFee="5")))


def test_min_price_above_max_price_is_refused() -> None:
    assert codes(load(owner(), tariff(minPrice="10", maxPrice="5"))) == ["min-above-max"]
    assert_valid(load(owner(), tariff(minPrice="5", maxPrice="5")))


@pytest.mark.parametrize(
    ("where", "value", "code", "hint"),
    [
        ("owner", {"currency": "EUX"}, "invalid-currency", 'did you mean "EUR"?'),
        ("tariff", {"currency": "USX"}, "invalid-currency", 'did you mean "USD"?'),
        ("owner", {"country": "QQ"}, "invalid-country", "use a code such as NL"),
        ("owner", {"ocpi": {"countryCode": "QQ", "partyId": "TST"}}, "invalid-country", "use a code such as NL"),
        ("station", {"address": {"street": "a", "city": "b", "country": "QQ"}}, "invalid-country",
         "use a code such as NL"),
        ("owner", {"timezone": "Europe/Amsterdan"}, "invalid-timezone", 'did you mean "Europe/Amsterdam"?'),
        ("station", {"timezone": "Mars/Olympus_Mons"}, "invalid-timezone",
         "use an IANA name such as Europe/Amsterdam"),
    ],
    ids=["owner-currency", "tariff-currency", "owner-country", "ocpi-country", "address-country",
         "owner-timezone", "station-timezone"],
)
def test_currencies_countries_and_time_zones_must_exist(where: str, value: Doc, code: str, hint: str) -> None:
    docs = {"owner": owner(**value) if where == "owner" else owner(),
            "tariff": tariff(**value) if where == "tariff" else tariff(),
            "station": station(**value) if where == "station" else station()}
    result = load(*docs.values())
    d = one(result, code)
    assert d.hint == hint
    assert d.file.startswith(where)


def test_real_currencies_countries_and_time_zones_are_accepted() -> None:
    assert_valid(load(owner(currency="CHF", country="CH", timezone="Europe/Zurich",
                            ocpi={"countryCode": "CH", "partyId": "TST"}),
                      tariff(currency="JPY"),
                      station(timezone="America/New_York",
                              address={"street": "5th Avenue 1", "city": "New York", "country": "US"})))


# --- tariff windows ---------------------------------------------------------------------------------


def window(name: str, days: list[str], start: str, end: str) -> Doc:
    return {"name": name, "days": days, "start": start, "end": end, "price": {"perKwh": "0.20"}}


@pytest.mark.parametrize(
    ("windows", "day"),
    [
        ([window("day", ["mon", "tue"], "08:00", "18:00"), window("peak", ["tue"], "17:00", "19:00")], "tue"),
        ([window("night", ["mon"], "22:00", "06:00"), window("early", ["tue"], "05:00", "07:00")], "tue"),
        ([window("night", ["sun"], "22:00", "06:00"), window("early", ["mon"], "05:30", "07:00")], "mon"),
        ([window("all", ["sat"], "00:00", "24:00"), window("late", ["sat"], "23:00", "23:30")], "sat"),
    ],
    ids=["same-day", "crossing-midnight", "sunday-into-monday", "whole-day"],
)
def test_overlapping_windows_of_one_tariff_are_refused(windows: list[Doc], day: str) -> None:
    result = load(owner(), tariff(windows=windows))
    d = one(result, "window-overlap")
    assert d.field == "spec.windows[1]"
    assert d.message.endswith(f"(on {day})")


@pytest.mark.parametrize(
    "windows",
    [
        [window("day", ["mon"], "08:00", "18:00"), window("evening", ["mon"], "18:00", "22:00")],
        [window("night", ["sun"], "22:00", "06:00"), window("early", ["mon"], "06:00", "07:00")],
        [window("night", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "22:00", "06:00"),
         window("day", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "06:00", "22:00")],
        [window("weekend", ["sat", "sun"], "00:00", "24:00"), window("friday", ["fri"], "18:00", "24:00")],
    ],
    ids=["back-to-back", "after-the-sunday-night", "whole-week", "weekend-and-friday-night"],
)
def test_windows_that_only_touch_are_accepted(windows: list[Doc]) -> None:
    assert_valid(load(owner(), tariff(windows=windows)))


def test_a_window_that_starts_when_it_ends_and_duplicate_window_names_are_refused() -> None:
    result = load(owner(), tariff(windows=[window("a", ["mon"], "08:00", "08:00"),
                                           window("b", ["tue"], "08:00", "09:00"),
                                           window("b", ["wed"], "08:00", "09:00")]))
    assert sorted(codes(result)) == ["duplicate-name", "empty-window"]


# --- price display --------------------------------------------------------------------------------


def test_a_price_display_longer_than_500_characters_only_once_escaped_is_refused() -> None:
    text = "Prijs " + "€" * 110  # 116 characters: fits displayText (max 120) ...
    result = load(owner(), tariff(displayText=text, displayTextOffline=text))
    d = one(result, "default-price-too-long")
    assert d.field == "spec.displayText"
    # ... and the JSON would fit if sent unescaped; as sent (\u20ac for each €) it does not
    ds = desired(owner(), tariff(displayText="x"))
    raw = json.loads(default_price_value(ds.tariffs["standard"]))
    raw["priceText"] = raw["priceTextOffline"] = text
    assert len(json.dumps(raw, ensure_ascii=False, separators=(",", ":"))) < 500
    assert "characters as sent" in d.message


def test_a_price_display_with_a_few_euro_signs_is_accepted() -> None:
    assert_valid(load(owner(), tariff(displayText="€ 0,35/kWh", displayTextOffline="€ 0,35/kWh")))


def test_a_price_display_per_window_is_checked_too() -> None:
    text = "€" * 90
    result = load(owner(), tariff(displayTextOffline=text, windows=[window("night", ["mon"], "22:00", "06:00")]))
    messages = [d.message for d in only(result, "default-price-too-long")]
    assert len(messages) == 2
    assert "window 'night'" in messages[1]


# --- OCPP configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "code", "column"),
    [
        ({"NumberOfConnectors": 2}, "ocpp-read-only-key", 5),
        ({"localauthlistmaxlength": 100}, "ocpp-read-only-key", 5),
        ({"AuthorizationKey": "0123456789abcdef0123"}, "ocpp-write-only-key", 5),
        ({"SecurityProfile": 1}, "ocpp-managed-key", 5),
        ({"HeartbeatIntervall": 300}, "unknown-ocpp-key", 5),
        ({"HeartbeatInterval": "often"}, "invalid-ocpp-value", 24),
        ({"StopTransactionOnEVSideDisconnect": "yes"}, "invalid-ocpp-value", 40),
        ({"MeterValuesSampledData": "Energy.Active.Import.Register,Volts"}, "invalid-ocpp-value", 29),
        ({"MeterValuesSampledData": ",".join(["Energy.Active.Import.Register"] * 17)}, "ocpp-value-too-long", 29),
    ],
    ids=["read-only", "read-only-any-case", "write-only", "managed", "unknown", "not-a-number", "not-a-boolean",
         "unknown-measurand", "too-long"],
)
def test_ocpp_keys_are_checked_against_the_16_catalog(config: Doc, code: str, column: int) -> None:
    result = load(owner(), station(ocppConfiguration=config))
    d = one(result, code)
    key = next(iter(config))
    assert (d.field, d.column) == (f"spec.ocppConfiguration.{key}", column)
    assert codes(result) == [code]  # one report per problem


def test_an_unknown_key_is_told_its_closest_standard_name() -> None:
    d = one(load(owner(), station(ocppConfiguration={"HeartbeatIntervall": 300})), "unknown-ocpp-key")
    assert d.hint == 'did you mean "HeartbeatInterval"? vendor-specific keys go under vendorConfiguration'


def test_settable_standard_keys_with_good_values_are_accepted_in_any_spelling() -> None:
    assert_valid(load(owner(defaults={"ocppConfiguration": {"heartbeatinterval": 300}}),
                      station(ocppConfiguration={"MeterValuesSampledData": "energy.active.import.register,SoC",
                                                 "ConnectionTimeOut": "90", "LocalPreAuthorize": "TRUE"})))


def test_a_vendor_value_longer_than_500_characters_is_refused() -> None:
    result = load(owner(), station(vendorConfiguration={"WelcomeMessage": "x" * 501}))
    assert one(result, "ocpp-value-too-long").field == "spec.vendorConfiguration.WelcomeMessage"
    assert_valid(load(owner(), station(vendorConfiguration={"WelcomeMessage": "x" * 500})))


def test_keys_in_profiles_and_owner_defaults_are_checked_where_they_are_written() -> None:
    result = load(owner(defaults={"ocppConfiguration": {"NumberOfConnectors": 2}}),
                  profile("p", {"ocppConfiguration": {"SupportedFeatureProfiles": "Core"}}), station())
    assert [(d.file, d.field) for d in result.errors] == [
        ("owner-test-owner.yaml", "spec.defaults.ocppConfiguration.NumberOfConnectors"),
        ("stationprofile-p.yaml", "spec.settings.ocppConfiguration.SupportedFeatureProfiles")]


def test_a_declared_key_that_contradicts_a_derived_one_is_reported_at_that_key() -> None:
    result = load(owner(), group("staff"), station(access={"mode": "restricted", "groups": ["staff"]},
                                                   ocppConfiguration={"localpreauthorize": True}))
    d = one(result, "managed-key-conflict")
    assert d.field == "spec.ocppConfiguration.localpreauthorize"
    assert "because access is restricted" in d.message


def test_a_contradiction_inherited_from_owner_defaults_is_reported_on_the_station() -> None:
    result = load(owner(defaults={"ocppConfiguration": {"LocalAuthListEnabled": False}}),
                  station(offlineAuthorization=True))
    d = one(result, "managed-key-conflict")
    assert (d.file, d.field) == ("station-st-1.yaml", "spec")
    assert_valid(load(owner(defaults={"ocppConfiguration": {"LocalAuthListEnabled": False}}),
                      station(offlineAuthorization=False)))


# --- map ----------------------------------------------------------------------------------------------


def test_a_public_station_needs_activation_coordinates_and_address() -> None:
    result = load(owner(), station(visibility="public", activation={"plan": "standard", "activated": False}))
    d = one(result, "public-station-incomplete")
    assert d.field == "spec.visibility"
    assert "activation (activated), coordinates, address" in d.message
    assert_valid(load(owner(), station(**PUBLIC)))


def test_a_private_station_without_an_audience_is_a_warning_only() -> None:
    result = load(owner(), station(visibility="private"))
    assert result.ok
    assert [(d.code, d.severity) for d in result.diagnostics] == [("private-without-audience", "warning")]


def test_hidden_stations_need_no_map_data() -> None:
    assert load(owner(), station(visibility="hidden")).diagnostics == []


# --- access and reservations --------------------------------------------------------------------------------


def test_restricted_access_without_groups_is_refused_wherever_it_is_written() -> None:
    restricted = {"mode": "restricted"}
    result = load(owner(defaults={"access": restricted}), profile("p", {"access": restricted}),
                  station(evses=[evse(1, access=restricted)]))
    assert sorted((d.file, d.field) for d in only(result, "restricted-without-groups")) == [
        ("owner-test-owner.yaml", "spec.defaults.access"), ("station-st-1.yaml", "spec.evses[0].access"),
        ("stationprofile-p.yaml", "spec.settings.access")]


def test_groups_on_public_access_are_a_warning() -> None:
    result = load(owner(), group("staff"), station(access={"mode": "public", "groups": ["staff"]}))
    assert result.ok
    assert codes(result) == ["public-with-groups"]


def test_reservation_only_evses_must_not_authorize_offline() -> None:
    result = load(owner(), policy("bays"),
                  station(offlineAuthorization=True, evses=[evse(1), evse(2, reservationPolicy="bays")]))
    d = one(result, "reservation-offline-auth")
    assert d.field == "spec.evses[1]"


@pytest.mark.parametrize(
    "docs",
    [
        [policy("bays"), station(offlineAuthorization=False, reservationPolicy="bays")],
        [policy("bays", walkIns=True), station(offlineAuthorization=True, reservationPolicy="bays")],
        [policy("bays", reservable=False), station(offlineAuthorization=True, reservationPolicy="bays")],
    ],
    ids=["offline-off", "walk-ins", "not-reservable"],
)
def test_reservable_evses_may_authorize_offline_when_walk_ins_are_allowed_or_offline_is_off(
        docs: list[Doc]) -> None:
    assert_valid(load(owner(), *docs))


def test_a_boot_selected_profile_turning_offline_authorization_on_is_caught_before_any_boot() -> None:
    alfen = profile("alfen", {"offlineAuthorization": True}, selector={"boot": {"vendor": "Alfen*"}})
    result = load(owner(), policy("bays"), alfen, station(reservationPolicy="bays"))
    assert codes(result) == ["reservation-offline-auth"]
    # the station's own setting outranks the profile, so saying false there settles it
    assert_valid(load(owner(), policy("bays"), alfen, station(reservationPolicy="bays", offlineAuthorization=False)))


def test_security_profile_1_or_2_needs_an_authorization_key() -> None:
    st = station(securityProfile=1)
    d = one(load(owner(), st), "missing-credentials")
    assert d.field == "spec.securityProfile"
    assert d.line is not None
    assert dump(st).splitlines()[d.line - 1] == "  securityProfile: 1"
    assert_valid(load(owner(), station(securityProfile=2, credentials={"authorizationKey": {"env": "KEY_1"}})))
    assert_valid(load(owner(), station(securityProfile=0)))


def test_a_security_profile_inherited_from_owner_defaults_needs_the_key_too() -> None:
    result = load(owner(defaults={"securityProfile": 2}), station())
    assert one(result, "missing-credentials").field == "spec"


def test_a_card_with_an_impossible_date_is_refused() -> None:
    result = load(owner(), group("staff", card("04A3B2C1D0E9F8", validUntil="2026-02-30")))
    assert one(result, "invalid-date").field == "spec.cards[0].validUntil"
    assert_valid(load(owner(), group("staff", card("04A3B2C1D0E9F8", validUntil="2028-02-29"))))


# --- the Owner ------------------------------------------------------------------------------------------


def test_a_repository_without_an_owner_is_refused_but_every_other_document_is_still_checked() -> None:
    result = load(tariff(), station(tariff="standrd"))
    assert sorted(codes(result)) == ["missing-owner", "unknown-reference"]
    assert result.desired is None


def test_a_repository_with_two_owners_is_refused_at_the_second() -> None:
    result = load(owner("first"), owner("second"))
    d = one(result, "duplicate-owner")
    assert (d.file, d.field) == ("owner-second.yaml", "kind")
    assert result.desired is None


@pytest.mark.parametrize(("waves", "ok"), [([10, 50, 100], True), ([100], True), ([50, 10, 100], False),
                                            ([10, 50], False)])
def test_rollout_waves_grow_and_end_at_100(waves: list[int], ok: bool) -> None:
    result = load(owner(rollout={"waves": waves}))
    assert result.ok is ok
    assert codes(result) == ([] if ok else ["invalid-value"])


def test_duplicate_plan_names_are_refused() -> None:
    result = load(owner(plans=[{"name": "standard"}, {"name": "standard"}]))
    assert codes(result) == ["duplicate-name"]
