"""Property-based tests: mangled YAML never crashes the validator; it always answers with diagnostics."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config import validate_sources

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "owner-configs" / "workplace-garage"
FILES = sorted((p.relative_to(EXAMPLE).as_posix(), p.read_bytes()) for p in EXAMPLE.rglob("*.yaml"))
YAML_BITS = [b":", b"-", b"---", b"\n", b"  ", b"[", b"]", b"{", b"}", b"'", b'"', b"&a", b"*a", b"!!int", b"#",
             b"\x00", b"\xff", b"? ", b"|", b">", b"NO", b"00412345", b"~", b"\t", b"%YAML 1.1", b"\xe2\x82\xac"]


@st.composite
def mangled_repo(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    files = list(FILES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(files) - 1))
        name, data = files[i]
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate-line"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "insert":
            data = data[:pos] + draw(st.sampled_from(YAML_BITS)) + data[pos:]
        elif op == "delete":
            data = data[:pos] + data[pos + draw(st.integers(1, 40)):]
        elif op == "replace":
            data = data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos + 1:]
        elif op == "truncate":
            data = data[:pos]
        else:
            lines = data.split(b"\n")
            j = draw(st.integers(0, len(lines) - 1))
            lines.insert(j, lines[j])
            data = b"\n".join(lines)
        files[i] = (name, data)
    return files


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled_repo())
def test_mangled_yaml_never_crashes_the_validator(files: list[tuple[str, bytes]]) -> None:
    result = validate_sources(files)
    for d in result.diagnostics:
        assert d.message and d.code and d.file
        assert d.severity in ("error", "warning")
    if result.errors:
        assert result.desired is None
    else:
        assert result.desired is not None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_file_is_answered_with_diagnostics_not_an_exception(text: str) -> None:
    result = validate_sources([("random.yaml", text.encode("utf-8", "surrogatepass"))])
    assert result.desired is None
    assert result.errors


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_answered_with_diagnostics_not_an_exception(data: bytes) -> None:
    result = validate_sources([("blob.yaml", data)])
    assert result.desired is None
    assert result.errors
