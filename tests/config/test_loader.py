"""The loader (controller/config/loader.py with source.py and positions.py): files and documents in,
desired state or every diagnostic out, each at the right file, line and column, with idTags masked."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.config import LoadResult, validate_paths, validate_sources
from controller.config.loader import FileCache

from .ownerrepo import card, codes, desired, dump, group, load, only, owner, profile, sources, station, tariff

OWNER_YAML = dump(owner())
TARIFF_YAML = dump(tariff())


def run(*files: tuple[str, str | bytes], with_owner: bool = True, max_file_bytes: int = 1 << 26) -> LoadResult:
    srcs = [(name, text.encode() if isinstance(text, str) else text) for name, text in files]
    if with_owner:
        srcs.insert(0, ("owner.yaml", OWNER_YAML.encode()))
    return validate_sources(srcs, max_file_bytes=max_file_bytes)


def station_doc(name: str, identity: str) -> str:
    return dump(station(name, identity))


def messages(result: LoadResult) -> list[str]:
    return [f"{d.location()} {d.code}: {d.message}" for d in result.diagnostics]


# --- documents in a file ----------------------------------------------------------------------------------


def test_a_file_with_three_documents_gives_three_stations_in_file_order() -> None:
    text = "---\n".join(station_doc(n, n.upper()) for n in ("st-a", "st-b", "st-c"))
    result = run(("stations.yaml", text))
    assert result.ok, messages(result)
    assert result.documents == 4  # the owner and three stations
    assert result.desired is not None
    by_doc = sorted(result.desired.stations.values(), key=lambda s: s.src.doc)
    assert [(s.name, s.src.file, s.src.doc) for s in by_doc] == [
        ("st-a", "stations.yaml", 0), ("st-b", "stations.yaml", 1), ("st-c", "stations.yaml", 2)]


def test_a_trailing_document_marker_adds_no_document() -> None:
    text = station_doc("st-a", "ST-A") + "---\n" + station_doc("st-b", "ST-B") + "---\n"
    result = run(("stations.yaml", text))
    assert result.ok, messages(result)
    assert result.documents == 3
    assert result.desired is not None
    assert sorted(result.desired.stations) == ["st-a", "st-b"]


def test_comments_before_the_first_document_marker_are_not_a_document() -> None:
    text = "# Stations on level 1.\n# Maintained by facilities.\n---\n" + station_doc("st-a", "ST-A")
    result = run(("stations.yaml", text))
    assert result.ok, messages(result)
    assert result.documents == 2


def test_a_document_that_is_a_list_is_reported_as_not_a_configuration_document() -> None:
    result = run(("list.yaml", "- one\n- two\n"))
    [d] = only(result, "not-a-document")
    assert (d.file, d.line, d.column) == ("list.yaml", 1, 1)
    assert "got list" in d.message


def test_a_document_that_is_a_scalar_is_reported_as_not_a_configuration_document() -> None:
    result = run(("scalar.yaml", station_doc("st-a", "ST-A") + "---\n42\n"))
    [d] = only(result, "not-a-document")
    assert d.doc == 1
    assert d.line is not None and d.line > 1
    assert "got int" in d.message


def test_a_mapping_without_api_version_or_kind_is_not_a_configuration_document() -> None:
    result = run(("notes.yaml", "title: parking notes\n"))
    [d] = only(result, "not-a-document")
    assert "no apiVersion and no kind" in d.message


def test_an_unknown_kind_is_refused_with_the_closest_kind() -> None:
    result = run(("t.yaml", TARIFF_YAML.replace("kind: Tariff", "kind: Tarif")))
    [d] = only(result, "unknown-kind")
    assert d.hint == 'did you mean "Tariff"?'
    assert (d.line, d.field) == (2, "kind")


def test_a_non_string_mapping_key_fails_the_document_and_says_to_quote_it() -> None:
    text = TARIFF_YAML.replace("price:\n", "price:\n    1: two\n")
    result = run(("tariffs.yaml", text))
    assert not result.ok
    [d] = [d for d in result.errors if d.file == "tariffs.yaml"]
    assert d.code == "non-string-key"
    assert "quote keys" in (d.hint or "")
    assert d.field == "spec.price.1"
    assert d.line == text.splitlines().index("    1: two") + 1


# --- files that are not YAML documents ----------------------------------------------------------------


def test_a_duplicate_key_is_reported_at_the_line_and_column_of_the_second_key() -> None:
    text = (
        "apiVersion: chargeops.io/v1\n"
        "kind: Tariff\n"
        "metadata:\n"
        "  name: standard\n"
        "spec:\n"
        "  price:\n"
        "    perKwh: \"0.35\"\n"
        "    sessionFee: \"1\"\n"
        "    perKwh: \"0.40\"\n"
    )
    result = run(("tariffs.yaml", text))
    [d] = only(result, "duplicate-key")
    assert (d.file, d.line, d.column) == ("tariffs.yaml", 9, 5)
    assert "perKwh" in d.message


def test_a_duplicate_key_in_the_second_document_points_into_that_document() -> None:
    text = station_doc("st-a", "ST-A") + "---\n" + station_doc("st-b", "ST-B").replace(
        "  identity: ST-B\n", "  identity: ST-B\n  identity: ST-C\n")
    first_doc_lines = station_doc("st-a", "ST-A").count("\n") + 1
    result = run(("stations.yaml", text))
    [d] = only(result, "duplicate-key")
    assert d.line is not None and d.line > first_doc_lines
    assert text.splitlines()[d.line - 1].strip() == "identity: ST-C"
    assert d.column == 3


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a:\n  b: 1\n c: 2\n", 3),  # bad indentation
        ("a: 1\nb: c: d\n", 2),  # a second ':' in a plain value
        ("a: 1\n  b: 2\n", 2),  # a mapping inside a scalar
    ],
    ids=["indentation", "colon-in-value", "mapping-in-scalar"],
)
def test_malformed_yaml_is_reported_at_the_line_of_the_problem(text: str, line: int) -> None:
    result = run(("broken.yaml", text))
    [d] = only(result, "yaml-syntax")
    assert (d.file, d.line) == ("broken.yaml", line)
    assert d.message.startswith("invalid YAML:")


def test_an_empty_file_is_reported_as_holding_no_document() -> None:
    result = run(("empty.yaml", ""), ("comments.yaml", "# nothing here yet\n"))
    assert sorted(d.file for d in only(result, "empty-file")) == ["comments.yaml", "empty.yaml"]


def test_a_binary_file_is_reported_as_binary_and_not_parsed() -> None:
    result = run(("logo.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
    [d] = only(result, "binary-file")
    assert d.file == "logo.yaml"
    assert "yaml-syntax" not in codes(result)


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte() -> None:
    data = b"apiVersion: chargeops.io/v1\nkind: Tariff\n" + b"metadata:\n  name: caf\xe9\n"
    result = run(("latin1.yaml", data))
    [d] = only(result, "not-utf8")
    assert (d.file, d.line) == ("latin1.yaml", 4)
    assert d.hint == "save the file as UTF-8"


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    result = run(("tariffs.yaml", b"\xef\xbb\xbf" + TARIFF_YAML.encode()))
    assert result.ok, messages(result)


def test_a_file_above_the_size_limit_is_refused_without_being_parsed() -> None:
    limit = len(OWNER_YAML) + 10
    big = TARIFF_YAML + "# padding\n" * (limit // 10)
    result = run(("tariffs.yaml", big), max_file_bytes=limit)
    [d] = only(result, "file-too-large")
    assert d.file == "tariffs.yaml"
    assert f"{len(big.encode()):,} bytes" in d.message


def test_a_file_above_the_size_limit_on_disk_is_refused(tmp_path: Path) -> None:
    (tmp_path / "owner.yaml").write_text(OWNER_YAML)
    (tmp_path / "cards.yaml").write_text("# many cards\n" * 100)
    result = validate_paths([tmp_path], max_file_bytes=len(OWNER_YAML) + 1)
    [d] = only(result, "file-too-large")
    assert d.file.endswith("cards.yaml")
    assert "split it" in (d.hint or "")


def test_no_sources_at_all_is_an_error() -> None:
    result = validate_sources([])
    assert codes(result) == ["no-configs"]
    assert not result.ok


# --- directories ---------------------------------------------------------------------------------------


def test_a_directory_without_yaml_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# my stations\n")
    result = validate_paths([tmp_path])
    assert codes(result) == ["no-configs"]
    assert result.desired is None


def test_a_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    result = validate_paths([tmp_path / "nope"])
    assert codes(result) == ["path-not-found"]


def test_yaml_in_nested_folders_is_loaded_and_hidden_folders_and_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "owner.yaml").write_text(OWNER_YAML)
    (tmp_path / "stations" / "level-1").mkdir(parents=True)
    (tmp_path / "stations" / "level-1" / "st.yml").write_text(station_doc("st-a", "ST-A"))
    for hidden in (tmp_path / ".git", tmp_path / "stations" / ".drafts"):
        hidden.mkdir()
        (hidden / "broken.yaml").write_text("this: [is not valid\n")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    (tmp_path / "notes.txt").write_text("not: [yaml\n")
    result = validate_paths([tmp_path])
    assert result.ok, messages(result)
    assert result.files == 2
    assert result.desired is not None
    assert list(result.desired.stations) == ["st-a"]


def test_a_file_named_twice_is_loaded_once(tmp_path: Path) -> None:
    (tmp_path / "owner.yaml").write_text(OWNER_YAML)
    result = validate_paths([tmp_path, tmp_path / "owner.yaml"])
    assert result.ok, messages(result)
    assert result.files == 1


# --- hostile input ---------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_an_alias_bomb_is_refused_quickly_instead_of_expanded() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    started = time.monotonic()
    result = run(("bomb.yaml", "\n".join(lines) + "\n"))
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"took {elapsed:.1f} s"
    [d] = [d for d in result.errors if d.file == "bomb.yaml"]
    assert d.code == "yaml-syntax"
    assert "alias" in d.message


# --- every problem, at its position -------------------------------------------------------------------


STATION_WITH_PROBLEMS = """\
apiVersion: chargeops.io/v1
kind: Station
metadata:
  name: st-1
spec:
  identity: ST-1
  activation:
    plan: standard
  tarif: standard
  evses:
    - id: "one"
      plugs:
        - standard: IEC_62196_T2
          format: SOCKET
          powerType: AC_3_PHAS
          maxVoltage: 230
          maxAmperage: 16
          maxPowerKW: 11
---
apiVersion: chargeops.io/v1
kind: Station
metadata:
  name: st-2
spec:
  identity: ST-2
  activation:
    plan: standard
  tariff: standrd
  evses:
    - id: 1
      plugs:
        - {standard: IEC_62196_T2, format: SOCKET, powerType: AC_3_PHASE, maxVoltage: 230, maxAmperage: 16}
    - id: 1
      plugs:
        - {standard: IEC_62196_T2, format: SOCKET, powerType: AC_3_PHASE, maxVoltage: 230, maxAmperage: 16}
"""


def test_every_problem_of_a_file_is_reported_in_one_run_at_its_field() -> None:
    result = run(("tariffs.yaml", TARIFF_YAML), ("stations.yaml", STATION_WITH_PROBLEMS))
    got = [(d.line, d.column, d.code, d.field) for d in result.diagnostics]
    assert got == [
        (9, 3, "unknown-field", "spec.tarif"),
        (11, 11, "wrong-type", "spec.evses[0].id"),
        (15, 22, "invalid-value", "spec.evses[0].plugs[0].powerType"),
        (18, 11, "unknown-field", "spec.evses[0].plugs[0].maxPowerKW"),
        (28, 11, "unknown-reference", "spec.tariff"),
        (33, 11, "duplicate-evse", "spec.evses[1].id"),
    ]
    assert {d.file for d in result.diagnostics} == {"stations.yaml"}


def test_unknown_fields_and_misspelt_values_come_with_the_closest_correct_name() -> None:
    result = run(("tariffs.yaml", TARIFF_YAML), ("stations.yaml", STATION_WITH_PROBLEMS))
    hints = {d.field: d.hint for d in result.diagnostics}
    assert hints["spec.tarif"] == 'did you mean "tariff"?'
    assert hints["spec.evses[0].plugs[0].maxPowerKW"] == 'did you mean "maxPowerKw"?'
    assert hints["spec.evses[0].plugs[0].powerType"] == 'did you mean "AC_3_PHASE"?'
    assert hints["spec.tariff"] == 'did you mean "standard"?'


def test_an_unknown_field_with_nothing_close_lists_the_allowed_fields() -> None:
    text = TARIFF_YAML.replace("spec:\n", "spec:\n  zzzzzz: 1\n")
    result = run(("tariffs.yaml", text))
    [d] = only(result, "unknown-field")
    assert d.hint is not None and d.hint.startswith("allowed here: ")
    assert "price" in d.hint and "windows" in d.hint


def test_a_semantic_error_in_a_profile_points_at_the_key_it_is_about() -> None:
    text = (
        "apiVersion: chargeops.io/v1\n"
        "kind: StationProfile\n"
        "metadata:\n"
        "  name: fleet\n"
        "spec:\n"
        "  settings:\n"
        "    ocppConfiguration:\n"
        "      HeartbeatInterval: 300\n"
        "      NumberOfConnectors: 2\n"
    )
    result = run(("profiles.yaml", text))
    [d] = result.errors
    assert (d.code, d.file, d.line, d.column) == ("ocpp-read-only-key", "profiles.yaml", 9, 7)


# --- idTags ---------------------------------------------------------------------------------------------

CARDS_BLOCK = """\
apiVersion: chargeops.io/v1
kind: AccessGroup
metadata:
  name: employees
spec:
  cards:
    - idTag: 00412345
      driver: drv-0001
    - {idTag: NO, driver: drv-0002}
    # - idTag: 12345678   (retired card, kept for the record)
    - idTag: "04A3B2C1D0E9F8"   # idTag: 99999999 was the old one
      driver: drv-0003
    - driver: drv-0004
      idTag: 'E5F6A7B8'
"""


def test_unquoted_id_tags_are_found_in_block_and_flow_style_but_not_in_comments() -> None:
    result = run(("cards.yaml", CARDS_BLOCK))
    found = [(d.line, d.column) for d in only(result, "idtag-unquoted")]
    assert found == [(7, 14), (9, 15)]
    assert [d.hint for d in only(result, "idtag-unquoted")] == ['quote it: idTag: "****2345"', 'quote it: idTag: "**"']
    assert "idtag-not-string" not in codes(result)  # one report per problem


def test_quoted_id_tags_in_both_quote_styles_are_accepted() -> None:
    text = CARDS_BLOCK.replace("idTag: 00412345", 'idTag: "00412345"').replace("idTag: NO", "idTag: 'NO'")
    result = run(("cards.yaml", text))
    assert result.ok, messages(result)
    assert result.desired is not None
    assert sorted(result.desired.cards) == ["00412345", "04A3B2C1D0E9F8", "E5F6A7B8", "NO"]


SECRET_TAGS = ["04A3B2C1D0E9F8", "NLEVB000123456", "NL-TNM-C01234567-8X", "ABCDEFGH12345678901234",
               "E5F6A7B8C9D0", "0099887766", "DEADBEEF0042"]


def test_no_diagnostic_ever_shows_an_id_tag_whole() -> None:
    employees = f"""\
apiVersion: chargeops.io/v1
kind: AccessGroup
metadata:
  name: employees
spec:
  cards:
    - idTag: "{SECRET_TAGS[0]}"
      driver: drv-0001
    - idTag: {SECRET_TAGS[4]}
      driver: drv-0003
"""
    contractors = f"""\
apiVersion: chargeops.io/v1
kind: AccessGroup
metadata:
  name: contractors
spec:
  cards:
    - idTag: "{SECRET_TAGS[3]}"
      driver: drv-0002
    - {{idTag: {SECRET_TAGS[5]}, driver: drv-0004}}
"""
    visitors = f"""\
apiVersion: chargeops.io/v1
kind: CardList
metadata:
  name: visitors-2026
spec:
  group: visitors
  cards:
    - idTag: "{SECRET_TAGS[0].lower()}"
      driver: drv-0101
    - idTag: "{SECRET_TAGS[1]}"
      driver: drv-0102
      validUntil: "2026-02-30"
    - idTag: "{SECRET_TAGS[1].lower()}"
      driver: drv-0103
    - idTag: "{SECRET_TAGS[2]}"
      driver: drv-0104
"""
    imported = f"""\
apiVersion: chargeops.io/v1
kind: CardList
metadata:
  name: imported
spec:
  group: visitorz
  cards:
    - idTag: "{SECRET_TAGS[6]}"
      driver: "not a pseudonym!"
      blocked: "yes"
"""
    result = run(("employees.yaml", employees), ("contractors.yaml", contractors), ("visitors.yaml", visitors),
                 ("imported.yaml", imported), ("groups.yaml", dump(group("visitors"))))
    assert {"idtag-unquoted", "invalid-value", "duplicate-idtag", "invalid-date", "wrong-type"} <= set(
        codes(result)), messages(result)
    assert len(only(result, "duplicate-idtag")) == 2
    texts = [t for d in result.diagnostics for t in (d.message, d.hint or "")]
    for tag in SECRET_TAGS:
        for variant in {tag, tag.lower()}:
            assert not [t for t in texts if variant in t], variant


# --- revisions ------------------------------------------------------------------------------------------


def test_the_content_revision_is_the_same_for_the_same_files_and_changes_with_any_byte() -> None:
    docs = (owner(), tariff(), station(tariff="standard"))
    first = desired(*docs).revision
    again = desired(*docs).revision
    changed = desired(owner(), tariff(price={"perKwh": "0.36"}), station(tariff="standard")).revision
    assert first == again
    assert first.startswith("sha256:")
    assert changed != first


def test_the_content_revision_does_not_depend_on_the_order_files_are_given_in() -> None:
    srcs = sources(owner(), tariff(), station(tariff="standard"))
    a = validate_sources(srcs).desired
    b = validate_sources(list(reversed(srcs))).desired
    assert a is not None and b is not None
    assert a.revision == b.revision


def test_a_revision_given_by_the_caller_is_kept() -> None:
    result = validate_sources(sources(owner()), revision="3f2a9c1")
    assert result.desired is not None
    assert result.desired.revision == "3f2a9c1"


def test_a_valid_repository_has_no_diagnostics_and_a_desired_state() -> None:
    result = load(owner(), tariff(), group("staff", card("04A3B2C1D0E9F8")), station(tariff="standard"))
    assert result.diagnostics == []
    assert result.desired is not None
    assert result.desired.card("04a3b2c1d0e9f8") is not None


# --- the file cache: a revision that changes one file does not parse and build the others again ---------

def _fleet(heartbeat: int, *, with_profile: bool = True, cards: int = 3) -> list[tuple[str, bytes]]:
    stations = [station(f"st-{i}", f"CP-{i}", profiles=["fleet"] if with_profile else []) for i in range(1, 6)]
    files = [("owner.yaml", OWNER_YAML), ("tariffs.yaml", TARIFF_YAML), ("stations.yaml", dump(*stations)),
             ("cards.yaml", dump(group("staff", *[card(f"TAG{i:04d}", f"drv-{i:04d}") for i in range(cards)])))]
    if with_profile:
        files.append(("profiles.yaml", dump(profile("fleet", {"ocppConfiguration": {"HeartbeatInterval": heartbeat}}))))
    return [(name, text.encode()) for name, text in files]


def _same(a: LoadResult, b: LoadResult) -> None:
    assert a.desired == b.desired
    assert [(d.code, d.file, d.line, d.column, d.message) for d in a.diagnostics] == [
        (d.code, d.file, d.line, d.column, d.message) for d in b.diagnostics]
    assert (a.files, a.documents) == (b.files, b.documents)


def test_with_a_file_cache_only_changed_files_are_read_again_and_the_result_is_the_same() -> None:
    cache = FileCache()
    first = validate_sources(_fleet(300), cache=cache)
    assert first.desired is not None and (cache.hits, cache.misses) == (0, 5)
    again = validate_sources(_fleet(600), cache=cache)
    assert (cache.hits, cache.misses) == (4, 6)  # only profiles.yaml changed
    _same(again, validate_sources(_fleet(600)))
    assert again.desired is not None
    assert again.desired.profiles["fleet"].settings != first.desired.profiles["fleet"].settings
    # the unchanged stations are the very objects of the previous revision (frozen: nothing to copy)
    assert again.desired.stations["st-1"] is first.desired.stations["st-1"]
    assert again.desired.cards == first.desired.cards


def test_a_change_in_one_file_reports_the_errors_it_causes_in_cached_files_at_their_lines() -> None:
    cache = FileCache()
    assert validate_sources(_fleet(300), cache=cache).ok
    broken = validate_sources(_fleet(300, with_profile=False)[:2] + _fleet(300)[2:4], cache=cache)
    fresh = validate_sources(_fleet(300, with_profile=False)[:2] + _fleet(300)[2:4])
    _same(broken, fresh)
    refs = only(broken, "unknown-reference")
    assert len(refs) == 5 and all(d.file == "stations.yaml" and d.line for d in refs)
    # and back: the profile returns, the stations file was never parsed again
    assert validate_sources(_fleet(300), cache=cache).ok
    assert cache.misses == 6


def test_files_with_a_diagnostic_of_their_own_are_not_cached_and_report_it_every_time() -> None:
    cache = FileCache()
    files = [("owner.yaml", OWNER_YAML.encode()), ("cards.yaml", CARDS_BLOCK.encode())]
    one, two = validate_sources(files, cache=cache), validate_sources(files, cache=cache)
    assert cache.hits == 1  # owner.yaml only
    _same(one, two)
    assert [(d.line, d.column) for d in only(two, "idtag-unquoted")] == [(7, 14), (9, 15)]


def test_a_file_cache_keeps_only_the_files_of_the_last_load() -> None:
    cache = FileCache()
    validate_sources(_fleet(300, cards=3), cache=cache)
    validate_sources(_fleet(300, cards=4), cache=cache)  # cards.yaml changed: its old entry is dropped
    validate_sources(_fleet(300, cards=3), cache=cache)
    assert (cache.hits, cache.misses) == (8, 7)
