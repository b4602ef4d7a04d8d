"""Table tests for the OCPP 1.6 configuration key catalog (controller/config/ocpp16_keys.py)."""

from __future__ import annotations

import pytest

from controller.config.ocpp16_keys import (
    KEYS,
    MEASURANDS,
    READ_ONLY_KEYS,
    WRITE_ONLY_KEYS,
    Access,
    OcppKey,
    Source,
    ValueType,
    check_value,
    closest,
    lookup,
    normalize_value,
    values_equal,
)


def key(name: str) -> OcppKey:
    found = lookup(name)
    assert found is not None, name
    return found


# --- the catalog itself -----------------------------------------------------------------------------


def test_every_key_is_indexed_by_its_upper_case_name() -> None:
    assert all(upper == k.name.upper() for upper, k in KEYS.items())


def test_every_key_has_a_one_line_description() -> None:
    for k in KEYS.values():
        assert k.description.strip(), k.name
        assert "\n" not in k.description, k.name


@pytest.mark.parametrize(
    "name",
    [
        "HeartbeatInterval",
        "MeterValuesSampledData",
        "StopTransactionOnInvalidId",
        "LocalPreAuthorize",
        "WebSocketPingInterval",
        "TransactionMessageAttempts",
        "LocalAuthListEnabled",
        "ReserveConnectorZeroSupported",
        "ChargeProfileMaxStackLevel",
        "ConnectorSwitch3to1PhaseSupported",
        "AuthorizationKey",
        "SecurityProfile",
        "CpoName",
        "CertificateStoreMaxLength",
        "CertificateSignedMaxChainSize",
        "AdditionalRootCertificateCheck",
        "CustomDisplayCostAndPrice",
        "DefaultPrice",
        "TimeOffset",
        "NextTimeOffsetTransitionDateTime",
        "TimeOffsetNextTransition",
        "CustomIdleFeeAfterStop",
        "SupportedLanguages",
        "Language",
        "CustomMultiLanguageMessages",
        "DefaultPriceText",
    ],
)
def test_the_catalog_holds_the_standard_and_whitepaper_keys(name: str) -> None:
    assert key(name).name == name


def test_list_members_and_units_only_appear_on_lists_and_numbers() -> None:
    for k in KEYS.values():
        assert k.type in set(ValueType)
        assert (k.members is not None or k.item_pattern is not None) <= (k.type is ValueType.CSL), k.name
        assert (k.unit is not None) <= (k.type is ValueType.INT), k.name


def test_whitepaper_keys_are_marked_with_their_source() -> None:
    assert key("SecurityProfile").source is Source.SECURITY
    assert key("DefaultPrice").source is Source.CALIFORNIA_PRICING
    assert key("TimeOffset").source is Source.CALIFORNIA_PRICING
    assert key("HeartbeatInterval").source is Source.OCPP16


@pytest.mark.parametrize(
    ("name", "profile", "required"),
    [
        ("HeartbeatInterval", "Core", True),
        ("BlinkRepeat", "Core", False),
        ("LocalAuthListMaxLength", "LocalAuthListManagement", True),
        ("ReserveConnectorZeroSupported", "Reservation", False),
        ("ChargingScheduleMaxPeriods", "SmartCharging", True),
    ],
)
def test_keys_carry_their_feature_profile_and_whether_the_spec_requires_them(
    name: str, profile: str, required: bool
) -> None:
    assert (key(name).profile, key(name).required) == (profile, required)


# --- lookup and suggestions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["HeartbeatInterval", "heartbeatinterval", "HEARTBEATINTERVAL", " HeartBeatInterval "]
)
def test_lookup_ignores_case(spelling: str) -> None:
    assert key(spelling).name == "HeartbeatInterval"


def test_lookup_returns_none_for_vendor_keys() -> None:
    assert lookup("AcmeLedBrightness") is None


def test_lookup_finds_a_per_language_key_by_its_base_name() -> None:
    assert key("DefaultPriceText,fr").name == "DefaultPriceText"
    assert lookup("HeartbeatInterval,fr") is None


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("HeartbeatIntervall", "HeartbeatInterval"),
        ("heartbeat_interval", "HeartbeatInterval"),
        ("MeterValueSampledData", "MeterValuesSampledData"),
        ("StopTransactionOnInvalidID", "StopTransactionOnInvalidId"),
        ("LocalAuthListEnable", "LocalAuthListEnabled"),
        ("Zzzzzz", None),
    ],
)
def test_closest_suggests_the_canonical_name(typo: str, suggestion: str | None) -> None:
    assert closest(typo) == suggestion


# --- read-only and write-only -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "NumberOfConnectors",
        "SupportedFeatureProfiles",
        "GetConfigurationMaxKeys",
        "LocalAuthListMaxLength",
        "SendLocalListMaxLength",
        "ReserveConnectorZeroSupported",
        "ChargeProfileMaxStackLevel",
        "ChargingScheduleAllowedChargingRateUnit",
        "ChargingScheduleMaxPeriods",
        "MaxChargingProfilesInstalled",
        "ConnectorPhaseRotationMaxLength",
        "MeterValuesAlignedDataMaxLength",
        "MeterValuesSampledDataMaxLength",
        "StopTxnAlignedDataMaxLength",
        "StopTxnSampledDataMaxLength",
        "SupportedFeatureProfilesMaxLength",
        "CertificateStoreMaxLength",
        "CertificateSignedMaxChainSize",
        "CustomDisplayCostAndPrice",
    ],
)
def test_capability_keys_are_read_only(name: str) -> None:
    assert name.upper() in READ_ONLY_KEYS
    assert key(name).access is Access.READ_ONLY


@pytest.mark.parametrize(
    "name", ["HeartbeatInterval", "MeterValuesSampledData", "LocalAuthListEnabled", "DefaultPrice"]
)
def test_settings_are_not_read_only(name: str) -> None:
    assert name.upper() not in READ_ONLY_KEYS


def test_authorization_key_is_the_only_write_only_key() -> None:
    assert frozenset({"AUTHORIZATIONKEY"}) == WRITE_ONLY_KEYS
    assert not READ_ONLY_KEYS & WRITE_ONLY_KEYS


# --- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LocalPreAuthorize", True, "true"),
        ("LocalPreAuthorize", False, "false"),
        ("LocalPreAuthorize", "TRUE", "true"),
        ("LocalPreAuthorize", " False ", "false"),
        ("HeartbeatInterval", 300, "300"),
        ("HeartbeatInterval", "0300", "300"),
        ("HeartbeatInterval", " 300 ", "300"),
        ("HeartbeatInterval", "abc", "abc"),
        (
            "MeterValuesSampledData",
            "Energy.Active.Import.Register , SoC",
            "Energy.Active.Import.Register,SoC",
        ),
        ("MeterValuesSampledData", "soc,voltage,", "SoC,Voltage"),
        ("MeterValuesSampledData", "Voltage,SoC", "Voltage,SoC"),
        ("ConnectorPhaseRotation", "0.RST,  1.RTS", "0.RST,1.RTS"),
        ("CpoName", " Acme ", " Acme "),
    ],
)
def test_normalize_value_gives_the_text_to_send(name: str, value: str | int | bool, expected: str) -> None:
    assert normalize_value(key(name), value) == expected


@pytest.mark.parametrize(("value", "expected"), [(True, "true"), (7, "7"), ("As Is ", "As Is ")])
def test_normalize_value_of_a_vendor_key_only_stringifies(value: str | int | bool, expected: str) -> None:
    assert normalize_value(None, value) == expected


# --- equality ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "a", "b", "equal"),
    [
        ("LocalPreAuthorize", "true", "True", True),
        ("LocalPreAuthorize", "TRUE", "false", False),
        ("HeartbeatInterval", "300", "0300", True),
        ("HeartbeatInterval", "300", "+300", True),
        ("HeartbeatInterval", "300", "301", False),
        (
            "MeterValuesSampledData",
            "Energy.Active.Import.Register,SoC",
            "energy.active.import.register, soc",
            True,
        ),
        ("MeterValuesSampledData", "SoC,Voltage", "Voltage,SoC", False),
        ("MeterValuesSampledData", "SoC", "SoC,Voltage", False),
        ("ConnectorPhaseRotation", "0.RST, 1.RST", "0.rst,1.rst", True),
        ("CpoName", "Acme", "acme", False),
        (
            "DefaultPrice",
            '{"priceText": "0.35/kWh", "chargingPrice": {"kWhPrice": 0.35}}',
            '{"chargingPrice":{"kWhPrice":0.350},"priceText":"0.35/kWh"}',
            True,
        ),
        ("DefaultPrice", '{"priceText": "a"}', '{"priceText": "b"}', False),
    ],
)
def test_values_equal_compares_by_meaning(name: str, a: str, b: str, equal: bool) -> None:
    assert values_equal(key(name), a, b) is equal
    assert values_equal(key(name), b, a) is equal


def test_values_of_vendor_keys_compare_exactly() -> None:
    assert values_equal(None, "On", "On")
    assert not values_equal(None, "On", "on")


# --- value checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HeartbeatInterval", "abc", "HeartbeatInterval expects a whole number of seconds, got 'abc'"),
        ("HeartbeatInterval", True, "HeartbeatInterval expects a whole number of seconds, got True"),
        ("HeartbeatInterval", -5, "HeartbeatInterval must be at least 0 seconds, got -5"),
        ("LightIntensity", 120, "LightIntensity must be at most 100 percent, got 120"),
        ("SecurityProfile", "4", "SecurityProfile must be at most 3, got 4"),
        ("LocalPreAuthorize", "yes", "LocalPreAuthorize expects true or false, got 'yes'"),
        ("LocalPreAuthorize", 1, "LocalPreAuthorize expects true or false, got 1"),
        (
            "MeterValuesSampledData",
            "Energy.Active.Import.Registr,SoC",
            "MeterValuesSampledData has an unknown member 'Energy.Active.Import.Registr'; "
            "did you mean 'Energy.Active.Import.Register'?",
        ),
        (
            "SupportedFeatureProfiles",
            "Core,SmartCharge",
            "SupportedFeatureProfiles has an unknown member 'SmartCharge'; did you mean 'SmartCharging'?",
        ),
        (
            "ConnectorPhaseRotation",
            "0.RST,1.ABC",
            "ConnectorPhaseRotation has a malformed member '1.ABC'; "
            "expected <connectorId>.<rotation> such as 0.RST or 1.NotApplicable",
        ),
        ("TimeOffset", "5", "TimeOffset expects a UTC offset such as -05:00 or +01:00, got '5'"),
        ("TimeOffset", -300, "TimeOffset expects text, got -300; quote it"),
        (
            "NextTimeOffsetTransitionDateTime",
            "next sunday",
            "NextTimeOffsetTransitionDateTime expects an RFC 3339 date-time such as "
            "2027-03-28T02:00:00+01:00, got 'next sunday'",
        ),
        (
            "DefaultPrice",
            '{"chargingPrice": {}}',
            "DefaultPrice expects a JSON object with at least a priceText string",
        ),
        ("CpoName", "x" * 501, "CpoName is 501 characters long; OCPP 1.6 allows at most 500"),
    ],
)
def test_check_value_explains_a_value_that_does_not_fit(
    name: str, value: str | int | bool, message: str
) -> None:
    assert check_value(key(name), value) == message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HeartbeatInterval", 300),
        ("HeartbeatInterval", "300"),
        ("LocalPreAuthorize", False),
        ("LocalPreAuthorize", "TRUE"),
        ("MeterValuesSampledData", "energy.active.import.register, SoC"),
        ("MeterValuesSampledData", ",".join(MEASURANDS)),
        ("ConnectorPhaseRotation", "0.RST, 1.NotApplicable, Unknown"),
        ("SupportedLanguages", "en, nl-BE, nb_NO"),
        ("TimeOffset", "-05:00"),
        ("NextTimeOffsetTransitionDateTime", "2027-03-28T02:00:00+01:00"),
        ("DefaultPrice", '{"priceText": "0.35 EUR/kWh", "chargingPrice": {"kWhPrice": 0.35}}'),
        ("AuthorizationKey", "0123456789abcdef0123456789abcdef01234567"),
        ("AuthorizationKey", "correct-horse-battery"[:20]),
    ],
)
def test_check_value_accepts_values_that_fit(name: str, value: str | int | bool) -> None:
    assert check_value(key(name), value) is None


def test_check_value_never_echoes_an_authorization_key() -> None:
    message = check_value(key("AuthorizationKey"), "hunter2")
    assert message is not None
    assert "hunter2" not in message


def test_check_value_of_a_vendor_key_only_checks_the_length() -> None:
    assert check_value(None, "anything") is None
    assert check_value(None, "x" * 501) == "The value is 501 characters long; OCPP 1.6 allows at most 500"
