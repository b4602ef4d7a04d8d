"""OCPP-J framing: round trips, sloppy chargers, exact decimals, and a parser that never blows up."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.hw import ocppj
from controller.hw.ocppj import Call, CallError, CallResult, ErrorCode, FrameError


def test_frames_survive_a_round_trip() -> None:
    frames = [
        Call("1", "Heartbeat", {}),
        Call("abc", "StartTransaction", {"connectorId": 1, "idTag": "X", "meterStart": 0, "timestamp": "t"}),
        CallResult("abc", {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}),
        CallError("z", "NotImplemented", "nope", {"a": 1}),
    ]
    for frame in frames:
        assert ocppj.parse(ocppj.encode(frame)) == frame


def test_frames_are_written_compactly() -> None:
    assert ocppj.encode(Call("1", "Heartbeat", {})) == '[2,"1","Heartbeat",{}]'
    assert ocppj.encode(CallResult("1", {"a": [1, 2]})) == '[3,"1",{"a":[1,2]}]'


def test_decimals_are_written_exactly_not_via_float() -> None:
    payload = {"price": Decimal("0.10"), "big": Decimal("12345678901234567890.123456789"), "e": Decimal("1E+3")}
    text = ocppj.dumps(payload)
    assert text == '{"price":0.10,"big":12345678901234567890.123456789,"e":1000}'
    assert json.loads(text, parse_float=Decimal)["big"] == payload["big"]


def test_decimals_inside_strings_and_nested_structures_are_left_alone() -> None:
    text = ocppj.dumps({"s": "0.10", "n": [{"v": Decimal("-0.005")}], "dt": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)})
    assert text == '{"s":"0.10","n":[{"v":-0.005}],"dt":"2024-01-02T03:04:05Z"}'


def test_non_finite_decimals_and_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        ocppj.dumps({"x": Decimal("NaN")})
    with pytest.raises(ValueError):
        ocppj.dumps({"x": datetime(2024, 1, 1)})


def test_fractions_are_parsed_as_decimals() -> None:
    frame = ocppj.parse('[3,"1",{"v":0.1}]')
    assert isinstance(frame, CallResult)
    assert frame.payload["v"] == Decimal("0.1")


def test_numeric_message_ids_are_accepted_and_echoed_as_numbers() -> None:
    call = ocppj.parse('[2,17,"Heartbeat",{}]')
    assert isinstance(call, Call) and call.message_id == "17"
    assert ocppj.encode(ocppj.result_for(call, {})) == "[3,17,{}]"


def test_extra_elements_missing_payloads_and_string_types_are_tolerated() -> None:
    assert ocppj.parse('[2,"1","Heartbeat",{},"extra",1]') == Call("1", "Heartbeat", {})
    assert ocppj.parse('[2,"1","Heartbeat"]') == Call("1", "Heartbeat", {})
    assert ocppj.parse('[2,"1","Heartbeat",null]') == Call("1", "Heartbeat", {})
    assert ocppj.parse('["3","1",{}]') == CallResult("1", {})
    assert ocppj.parse('[4,"1"]') == CallError("1", "GenericError", "", {})


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("FormatViolation", "FormationViolation"),
        ("FormationViolation", "FormationViolation"),
        ("OccurrenceConstraintViolation", "OccurenceConstraintViolation"),
        ("OccurenceConstraintViolation", "OccurenceConstraintViolation"),
        ("notimplemented", "NotImplemented"),
        ("VendorSpecific", "VendorSpecific"),
    ],
)
def test_both_spellings_of_error_codes_are_read_as_the_1_6_spelling(sent: str, read: str) -> None:
    frame = ocppj.parse(json.dumps([4, "1", sent, "d", {}]))
    assert isinstance(frame, CallError) and frame.code == read


def test_broken_json_of_a_call_is_answerable_with_formation_violation() -> None:
    with pytest.raises(FrameError) as caught:
        ocppj.parse('[2,"abc","Heartbeat",{')
    err = caught.value
    assert err.answerable and err.message_id == "abc" and err.code is ErrorCode.FORMATION_VIOLATION
    assert ocppj.encode(err.to_call_error()).startswith('[4,"abc","FormationViolation"')


def test_a_call_without_an_action_is_a_protocol_error() -> None:
    with pytest.raises(FrameError) as caught:
        ocppj.parse('[2,"abc"]')
    assert caught.value.code is ErrorCode.PROTOCOL_ERROR and caught.value.answerable


@pytest.mark.parametrize("frame", ["nonsense", "{}", "[]", "[2]", "[2,{}]", '"x"', "5", "[2,true,\"A\",{}]"])
def test_frames_without_a_recoverable_id_are_not_answerable(frame: str) -> None:
    with pytest.raises(FrameError) as caught:
        ocppj.parse(frame)
    assert not caught.value.answerable


def test_a_bad_reply_is_never_answered() -> None:
    with pytest.raises(FrameError) as caught:
        ocppj.parse('[3,"abc",[1]]')
    assert caught.value.message_id == "abc" and not caught.value.answerable


def test_binary_frames_nan_and_deep_nesting_are_frame_errors() -> None:
    for frame in (b"[2,\"1\",\"Heartbeat\",{}]", '[2,"1","A",{"x":NaN}]', "[" * 100_000):
        with pytest.raises(FrameError):
            ocppj.parse(frame)


def test_timestamps_are_written_in_utc_with_z_and_read_leniently() -> None:
    cet = timezone(timedelta(hours=1))
    assert ocppj.format_datetime(datetime(2024, 3, 1, 13, 0, tzinfo=cet)) == "2024-03-01T12:00:00Z"
    assert ocppj.format_datetime(datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)) == "2024-03-01T12:00:00.123Z"
    assert ocppj.parse_datetime("2024-03-01T12:00:00Z") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert ocppj.parse_datetime("2024-03-01T12:00:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert ocppj.parse_datetime("yesterday") is None and ocppj.parse_datetime(5) is None


def test_logs_never_show_full_id_tags_or_authorization_keys() -> None:
    text = ocppj.describe(Call("1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "s3cr3t-s3cr3t-123"}))
    assert "s3cr3t" not in text
    text = ocppj.describe(Call("2", "Authorize", {"idTag": "04A1B2C3D4"}))
    assert "04A1B2" not in text and "C3D4" in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.binary(max_size=30), json_values.map(json.dumps)))
def test_random_garbage_never_raises_anything_but_frame_error(frame: str | bytes) -> None:
    try:
        parsed = ocppj.parse(frame)
    except FrameError as err:
        if err.answerable:
            ocppj.encode(err.to_call_error())
    else:
        assert isinstance(parsed, Call | CallResult | CallError)
        ocppj.encode(parsed)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([2, 3, 4, "2", "3", 9]),
    st.one_of(st.text(max_size=10), st.integers(), st.none()),
    st.lists(json_values, max_size=4),
)
def test_random_ocpp_shaped_arrays_never_raise_anything_but_frame_error(
    mtype: object, ident: object, rest: list[object]
) -> None:
    with contextlib.suppress(FrameError):
        ocppj.parse(json.dumps([mtype, ident, *rest]))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.decimals(allow_nan=False, allow_infinity=False), max_size=5))
def test_any_finite_decimal_survives_dumps_exactly(values: dict[str, Decimal]) -> None:
    back = json.loads(ocppj.dumps(values), parse_float=Decimal, parse_int=Decimal)
    assert back == values


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_dumps_writes_what_json_dumps_writes_with_the_same_options(value: object) -> None:
    # the encoder is built once from the C accelerator's parts: it must write byte for byte what the standard
    # library's compact, non-ASCII, NaN-refusing dumps writes
    def outcome(dumps: Callable[[object], str]) -> object:
        try:
            return dumps(value)
        except ValueError as exc:  # infinities
            return ("refused", str(exc))

    assert outcome(ocppj.dumps) == outcome(
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False))


def test_dumps_refuses_what_json_refuses_and_writes_enums_and_times() -> None:
    with pytest.raises(ValueError):
        ocppj.dumps([float("nan")])
    with pytest.raises(TypeError):
        ocppj.dumps({"x": object()})
    assert ocppj.dumps([ErrorCode.GENERIC_ERROR, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "é€\n\""]) \
        == '["GenericError","2026-01-02T03:04:05Z","é€\\n\\""]'


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), json_values.map(json.dumps),
                 json_values.map(lambda v: f" \t{json.dumps(v)}\n ")))
def test_frames_are_read_as_the_decoder_reads_them_errors_included(text: str) -> None:
    # the decoder's scanner is called directly (without JSONDecoder.decode around it): same values, same errors
    try:
        expected: object = ocppj._DECODER.decode(text)
    except ValueError as exc:
        expected = ("error", str(exc))
    try:
        got: object = ocppj._loads(text)
    except ValueError as exc:
        got = ("error", str(exc))
    assert got == expected
