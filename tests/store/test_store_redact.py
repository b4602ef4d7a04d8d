"""mask_id_tag and redact (redact.py)."""

from __future__ import annotations

import pytest

from controller.store.redact import REDACTED, mask_id_tag, redact


@pytest.mark.parametrize(
    ("tag", "masked"),
    [("04A2B3C4", "****B3C4"), ("ABCDE", "*BCDE"), ("ABCD", "****"), ("AB", "**"), ("", "")],
)
def test_an_id_tag_is_masked_to_its_last_four_characters(tag: str, masked: str) -> None:
    assert mask_id_tag(tag) == masked


def test_redact_masks_nested_id_tags_and_removes_secrets_without_touching_the_input() -> None:
    detail = {
        "station": "CP1",
        "idTagInfo": {"status": "Accepted", "parentIdTag": "STAFF-GROUP"},
        "entries": [{"idTag": "04A2B3C4", "status": "Blocked"}],
        "change": {"key": "authorizationkey", "value": "00ff", "result": "Accepted"},
        "token": "t",
        "raw": b"\x00\x01",
        "count": 3,
    }
    assert redact(detail) == {
        "station": "CP1",
        "idTagInfo": {"status": "Accepted", "parentIdTag": "*******ROUP"},
        "entries": [{"idTag": "****B3C4", "status": "Blocked"}],
        "change": {"key": "authorizationkey", "value": REDACTED, "result": "Accepted"},
        "token": REDACTED,
        "raw": REDACTED,
        "count": 3,
    }
    assert detail["token"] == "t"


def test_an_audit_detail_is_encoded_once_per_distinct_detail_and_always_as_redact_and_canonical_json_make_it() -> None:
    from controller.store import sql_ops
    from controller.store.codec import canonical_json

    details: list[dict[str, object]] = [
        {"phase": "data", "reason": "r", "result": "Accepted", "change": {"field": "HeartbeatInterval", "old": "300",
                                                                          "new": "600"}},
        {"change": {"key": "AuthorizationKey", "value": "00ff"}, "secret": "s"},
        {"entries": [{"idTag": "04A2B3C4"}], "n": 1},
        # equal in Python (True == 1 == 1.0), not in JSON: never one entry
        {"n": True}, {"n": 1}, {"n": 1.0}, {"n": [1]}, {"n": (1,)}, {"n": {"1": 1}},
    ]
    for detail in details:
        first = sql_ops.detail_json(detail)
        assert first == canonical_json(redact(detail))
        assert sql_ops.detail_json(dict(detail)) is first  # the same text, not encoded again
    assert [sql_ops.detail_json(d) for d in details[3:6]] == ['{"n":true}', '{"n":1}', '{"n":1.0}']
    assert "00ff" not in sql_ops.detail_json(details[1]) and "04A2B3C4" not in sql_ops.detail_json(details[2])
    assert sql_ops.detail_json({"n": {1, 2}}) == canonical_json(redact({"n": {1, 2}}))  # unhashable: not kept


def test_a_read_only_detail_shared_by_many_entries_is_encoded_once_and_like_any_other() -> None:
    from types import MappingProxyType

    from controller.store import sql_ops
    from controller.store.codec import canonical_json

    inner = {"phase": "data", "reason": "r", "result": "Accepted",
             "change": {"field": "AuthorizationKey", "old": None, "new": "00ff"}, "secret": "s"}
    shared = MappingProxyType(inner)
    first = sql_ops.detail_json(shared)
    assert first == canonical_json(redact(dict(inner))) and "\"secret\":\"[redacted]\"" in first
    assert sql_ops.detail_json(shared) is first  # found by the detail itself, not encoded again
    other = MappingProxyType(dict(inner, result="Rejected"))  # another detail: its own text
    assert '"result":"Rejected"' in sql_ops.detail_json(other)
