"""Handshake authentication helpers: identity from the URL, keys as raw bytes or hex, constant-time
comparison, secret references, and the bad-password throttle (fake clock)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from controller.config.model import SecretRef
from controller.hw.auth import (
    AuthThrottle,
    identity_from_path,
    key_bytes,
    parse_basic_auth,
    password_matches,
    resolve_secret,
)


@pytest.mark.parametrize(("path", "identity"), [
    ("/ocpp/CP-1", "CP-1"), ("/CP-1", "CP-1"), ("/ocpp/CP-1/", "CP-1"), ("/a/b/CP%201?x=1", "CP 1"),
    ("/", None), ("", None)])
def test_the_identity_is_the_percent_decoded_last_path_segment(path: str, identity: str | None) -> None:
    assert identity_from_path(path) == identity


def test_a_hex_configured_key_matches_the_raw_bytes_and_the_hex_text_in_either_case() -> None:
    key = key_bytes("00112233445566778899AABBCCDDEEFF")
    assert key == bytes(range(0, 256, 17))
    assert password_matches(b"00112233445566778899aabbccddeeff", [key])
    assert password_matches(b"00112233445566778899AABBCCDDEEFF", [key])
    assert password_matches(key, [key])
    assert not password_matches(b"00112233445566778899aabbccddeef0", [key])
    assert not password_matches(b"", [key])


def test_a_text_key_is_compared_as_its_utf8_bytes() -> None:
    key = key_bytes("correct horse battery")
    assert password_matches(b"correct horse battery", [key])
    assert not password_matches(b"correct horse batter", [key])


def test_basic_auth_headers_are_parsed_and_garbage_is_refused() -> None:
    header = "Basic " + base64.b64encode(b"CP%2D1:pa:ss").decode()
    assert parse_basic_auth(header) == ("CP-1", b"pa:ss")
    for bad in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        assert parse_basic_auth(bad) is None


def test_secret_references_read_the_environment_or_a_file_inside_the_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "cp1.key").write_text("abc\n")
    assert resolve_secret(SecretRef(env="K"), None, {"K": " v "}) == "v"
    assert resolve_secret(SecretRef(env="MISSING"), None, {}) is None
    assert resolve_secret(SecretRef(file="cp1.key"), tmp_path, {}) == "abc"
    outside = tmp_path.parent / "outside.key"
    outside.write_text("nope")
    assert resolve_secret(SecretRef(file="../outside.key"), tmp_path, {}) is None


def test_repeated_bad_passwords_are_slowed_down_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    t = AuthThrottle(base_delay=0.25, max_delay=2.0, forget_after=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "chargeops.hw.auth")
    delays = []
    for _ in range(6):
        delays.append(t.delay_for("CP-1", "10.0.0.1"))
        t.failed("CP-1", "10.0.0.1", "wrong password")
    assert delays == [0.0, 0.25, 0.5, 1.0, 2.0, 2.0]
    assert len(caplog.records) == 1 and "secret" not in caplog.text.lower()
    assert t.delay_for("CP-2", "10.0.0.1") == 0.0  # others are not slowed down
    now[0] = 100.0
    assert t.delay_for("CP-1", "10.0.0.1") == 0.0  # forgotten after a quiet period
    t.failed("CP-1", "10.0.0.1", "wrong password")
    t.succeeded("CP-1", "10.0.0.1")
    assert t.delay_for("CP-1", "10.0.0.1") == 0.0
