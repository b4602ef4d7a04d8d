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
