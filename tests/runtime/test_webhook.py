"""The push-webhook signature check (GitHub's X-Hub-Signature-256)."""

from __future__ import annotations

from controller.runtime.sources import sign, verify_signature

BODY = b'{"ref":"refs/heads/main"}'


def test_a_signature_made_with_the_shared_secret_verifies() -> None:
    header = sign("s3cret", BODY)
    assert header.startswith("sha256=")
    assert verify_signature("s3cret", BODY, header)
    assert verify_signature(b"s3cret", BODY, header.upper().replace("SHA256=", "sha256="))


def test_a_wrong_secret_a_changed_body_or_a_bad_header_does_not_verify() -> None:
    header = sign("s3cret", BODY)
    assert not verify_signature("other", BODY, header)
    assert not verify_signature("s3cret", BODY + b" ", header)
    assert not verify_signature("s3cret", BODY, None)
    assert not verify_signature("s3cret", BODY, header.removeprefix("sha256="))
    assert not verify_signature("s3cret", BODY, "sha1=" + header[7:])
    assert not verify_signature("s3cret", BODY, "sha256=ünïcode")


def test_an_empty_secret_verifies_nothing() -> None:
    assert not verify_signature("", BODY, sign("", BODY))
