"""The store's time codec: fixed-width UTC text that sorts as time sorts, read back exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.store.codec import canonical_json, compact_json, from_db_time, to_db_time


def test_a_time_is_stored_as_fixed_width_utc_text_and_read_back_equal() -> None:
    local = datetime(2024, 5, 1, 12, 0, 0, 7, tzinfo=timezone(timedelta(hours=2)))
    text = to_db_time(local)
    assert text == "2024-05-01T10:00:00.000007Z"
    back = from_db_time(text)
    assert back == local and back.utcoffset() == timedelta(0)


@pytest.mark.parametrize("when", [datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC),
                                  datetime(2024, 5, 1, 10, 0, 0, 999999, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59,
                                                                                                500000, tzinfo=UTC),
                                  datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(0), "Z0"))])
def test_a_utc_time_is_the_same_text_as_that_time_given_in_another_zone(when: datetime) -> None:
    elsewhere = when.astimezone(timezone(timedelta(hours=-5)))
    assert to_db_time(when) == to_db_time(elsewhere) and len(to_db_time(when)) == len("2024-05-01T10:00:00.000000Z")
    assert from_db_time(to_db_time(when)) == when
    assert to_db_time(when) == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # and a second time, from the cache
    assert to_db_time(when) == when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_text_order_is_time_order() -> None:
    times = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in (0.5, 3, 59.999999, 86_400 * 400)]
    texts = [to_db_time(t) for t in times]
    assert sorted(texts) == texts and len({len(t) for t in texts}) == 1


@pytest.mark.parametrize("bad", ["2024-05-01 10:00:00.000000Z", "2024-05-01T10:00:00.00000xZ", "yesterday"])
def test_text_that_is_not_ours_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        from_db_time(bad)


def test_a_naive_time_is_a_bug() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_db_time(datetime(2024, 5, 1, 12))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_stored_json_is_what_json_dumps_writes(value: object) -> None:
    # the encoders are built once from the C accelerator's parts: content addresses (canonical_json) must stay
    # byte for byte what json.dumps writes, or every stored hash would change
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert compact_json(value) == json.dumps(value, separators=(",", ":"))


def test_what_json_cannot_hold_is_refused_as_json_refuses_it() -> None:
    for encode in (canonical_json, compact_json):
        with pytest.raises(TypeError, match="Object of type datetime is not JSON serializable"):
            encode({"at": datetime(2026, 1, 1, tzinfo=UTC)})
