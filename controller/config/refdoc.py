"""Generate docs/reference.md, the owners' configuration reference, from the JSON Schemas in schemas/.

Role: render every kind's fields (path, type, required, default, description, allowed values) as Markdown
tables, one section per kind, plus an appendix listing the OCPP 1.6 keys ``ocppConfiguration`` accepts.
The schemas stay the single source of truth; a test runs ``--check`` so the document cannot drift.

Boundary: reads schema files and writes (or compares) one Markdown file; knows nothing about loading or
validating owner repositories. Defaults are taken from a ``default`` keyword or parsed from
"(default X)" / "Default X." in descriptions.

Usage: ``python -m controller.config.refdoc [--check]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ocpp16_keys import KEYS, MEASURANDS, Access, Source
from .schemas_path import schemas_dir

__all__ = ["KIND_ORDER", "main", "reference_path", "render_reference"]

Schema = dict[str, Any]

KIND_ORDER: tuple[str, ...] = (
    "Owner",
    "Station",
    "StationProfile",
    "Tariff",
    "AccessGroup",
    "CardList",
    "ReservationPolicy",
)
COMMON_FILE = "common.json"
GENERATOR = "python -m controller.config.refdoc"
SHARED_ANCHOR = "shared-value-types"
OCPP_KEYS_ANCHOR = "appendix-ocpp-16-configuration-keys"

_DEFAULT_PATTERNS = (
    re.compile(r"\(default:?\s+([^;)]+?)\s*[;)]", re.IGNORECASE),
    re.compile(r"(?:^|[.!?]\s+)Default:?\s+([^\s;]+?)\.(?:\s|$)"),
)


def reference_path() -> Path:
    """Where the generated reference lives: docs/reference.md beside schemas/."""
    return schemas_dir().parent / "docs" / "reference.md"


@dataclass
class _Row:
    path: str
    type: str
    required: bool
    default: str
    description: str


@dataclass
class _Table:
    path: str
    description: str
    rows: list[_Row] = field(default_factory=list)


class _Resolver:
    """Follows ``$ref`` within a file and into common.json (the only cross-file target)."""

    def __init__(self, directory: Path) -> None:
        self.files: dict[str, Schema] = {}
        for path in sorted(directory.glob("*.json")):
            self.files[path.name] = json.loads(path.read_text(encoding="utf-8"))

    def resolve(self, schema: Schema, current: str) -> tuple[Schema, str, str | None]:
        """The schema a ``$ref`` points to (recursively), its file, and the last definition name."""
        name: str | None = None
        while "$ref" in schema:
            ref: str = schema["$ref"]
            file_part, _, pointer = ref.partition("#")
            current = file_part or current
            target: Any = self.files[current]
            for part in (p for p in pointer.split("/") if p):
                target = target[part]
            name = pointer.rsplit("/", 1)[-1] or name
            schema = target
        return schema, current, name


def _md(text: str) -> str:
    """Plain text for a table cell: one line, pipes escaped, no accidental HTML tags."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _default_of(schema: Schema, description: str) -> str:
    if "default" in schema:
        return _code(json.dumps(schema["default"]))
    for pattern in _DEFAULT_PATTERNS:
        match = pattern.search(description)
        if match:
            return _md(match.group(1).strip())
    return ""


class _Renderer:
    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver

    def merged_object(self, schema: Schema, file: str) -> tuple[dict[str, tuple[Schema, str]], set[str]]:
        """Properties (with the file each is defined in) and required names, through $ref and allOf."""
        schema, file, _ = self.resolver.resolve(schema, file)
        props: dict[str, tuple[Schema, str]] = {name: (sub, file) for name, sub in schema.get("properties", {}).items()}
        required: set[str] = set(schema.get("required", []))
        for part in schema.get("allOf", []):  # inherited properties after the object's own
            sub_props, sub_required = self.merged_object(part, file)
            props.update({name: sub for name, sub in sub_props.items() if name not in props})
            required |= sub_required
        return props, required

    def is_object(self, schema: Schema, file: str) -> bool:
        props, _ = self.merged_object(schema, file)
        return bool(props)

    def describe(self, schema: Schema, file: str) -> str:
        """The property's own description, else the description of what it refers to."""
        if schema.get("description"):
            return str(schema["description"])
        target, _, _ = self.resolver.resolve(schema, file)
        return str(target.get("description", ""))

    def type_of(self, schema: Schema, file: str) -> str:
        target, target_file, def_name = self.resolver.resolve(schema, file)
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "const" in merged:
            return _code(json.dumps(merged["const"]))
        if "enum" in merged:
            text = "enum"
        elif self.is_object(merged, target_file):
            text = "object"
        elif merged.get("type") == "array":
            items = merged.get("items", {})
            text = f"list of {self.type_of(items, target_file)}"
        elif merged.get("type") == "object" and isinstance(merged.get("additionalProperties"), dict):
            text = f"map of name → {self.type_of(merged['additionalProperties'], target_file)}"
        else:
            kinds = merged.get("type", "any")
            text = " or ".join(kinds) if isinstance(kinds, list) else str(kinds)
        if def_name and target_file == COMMON_FILE and text != "object" and not text.startswith(("list", "map")):
            # A shared value type: link it; its constraints are listed once, under "Shared value types".
            return f"[{def_name}](#{SHARED_ANCHOR})" + self.constraints(schema)
        return text + self.constraints(merged)

    @staticmethod
    def constraints(schema: Schema) -> str:
        parts: list[str] = []
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            parts.append(f"> {schema['exclusiveMinimum']}")
        if lo is not None and hi is not None:
            parts.append(f"{lo}..{hi}")
        elif lo is not None:
            parts.append(f"≥ {lo}")
        elif hi is not None:
            parts.append(f"≤ {hi}")
        if "minLength" in schema and "maxLength" in schema:
            parts.append(f"{schema['minLength']}..{schema['maxLength']} chars")
        elif "maxLength" in schema:
            parts.append(f"≤ {schema['maxLength']} chars")
        elif "minLength" in schema:
            parts.append(f"≥ {schema['minLength']} chars")
        if "minItems" in schema:
            parts.append(f"≥ {schema['minItems']} items")
        if schema.get("uniqueItems"):
            parts.append("unique")
        if "pattern" in schema:
            parts.append(f"pattern {_code(schema['pattern'])}")
        return ", " + ", ".join(parts) if parts else ""

    @staticmethod
    def enum_note(schema: Schema) -> str:
        values = schema.get("enum")
        if not values:
            return ""
        shown = (v if isinstance(v, str) else json.dumps(v) for v in values)
        return " Values: " + ", ".join(_code(v) for v in shown) + "."

    def tables(self, schema: Schema, file: str, path: str, description: str) -> Iterator[_Table]:
        """One table for the object at ``path``, then one per nested object, depth first."""
        props, required = self.merged_object(schema, file)
        table = _Table(path, description)
        children: list[tuple[Schema, str, str, str]] = []
        for name, (sub, sub_file) in props.items():
            sub_path = f"{path}.{name}" if path else name
            target, target_file, _ = self.resolver.resolve(sub, sub_file)
            merged = {**target, **{k: v for k, v in sub.items() if k != "$ref"}}
            text = self.describe(sub, sub_file)
            table.rows.append(
                _Row(
                    path=sub_path,
                    type=self.type_of(sub, sub_file),
                    required=name in required,
                    default=_default_of(merged, text),
                    description=_md(text) + self.enum_note(merged) + _see_also(name),
                )
            )
            if self.is_object(sub, sub_file):
                children.append((sub, sub_file, sub_path, self.describe(sub, sub_file)))
            elif merged.get("type") == "array":
                items, items_file, _ = self.resolver.resolve(merged.get("items", {}), target_file)
                if self.is_object(items, items_file):
                    children.append((items, items_file, f"{sub_path}[]", self.describe(items, items_file)))
        yield table
        for child, child_file, child_path, child_description in children:
            yield from self.tables(child, child_file, child_path, child_description)


def _see_also(name: str) -> str:
    if name == "ocppConfiguration":
        return f" See [the OCPP 1.6 keys](#{OCPP_KEYS_ANCHOR})."
    return ""


def _render_shared_types(renderer: _Renderer) -> list[str]:
    lines = [
        "## Shared value types",
        "",
        "Value types used by fields of several kinds (defined in `schemas/common.json`).",
        "",
        "| Type | Base type | Description |",
        "|---|---|---|",
    ]
    for name, schema in renderer.resolver.files[COMMON_FILE].get("$defs", {}).items():
        if renderer.is_object(schema, COMMON_FILE):
            continue
        base = renderer.type_of(schema, COMMON_FILE)
        text = _md(str(schema.get("description", ""))) + renderer.enum_note(schema)
        lines.append(f"| {name} | {base} | {text} |")
    return [*lines, ""]


def _render_table(table: _Table, heading: str) -> list[str]:
    lines = [heading, ""]
    if table.description:
        lines += [_md(table.description).replace("\\|", "|"), ""]
    lines += ["| Field | Type | Required | Default | Description |", "|---|---|---|---|---|"]
    for row in table.rows:
        lines.append(
            f"| {_code(row.path)} | {row.type} | {'yes' if row.required else ''} | {row.default} "
            f"| {row.description} |"
        )
    return [*lines, ""]


def _render_ocpp_keys() -> list[str]:
    lines = [
        "## Appendix: OCPP 1.6 configuration keys",
        "",
        "Keys accepted in `ocppConfiguration` (names are case-insensitive). Read-only keys report a "
        "charger's capabilities and cannot be set; AuthorizationKey is set only through "
        "`spec.credentials.authorizationKey`. Vendor keys go under `vendorConfiguration`. "
        "California Pricing keys only apply to chargers where CustomDisplayCostAndPrice reads true.",
        "",
        "| Key | Type | Access | Profile | Required by spec | Description |",
        "|---|---|---|---|---|---|",
    ]
    for key in KEYS.values():
        type_text = key.type.value
        if key.unit:
            type_text += f" ({key.unit})"
        if key.minimum is not None and key.maximum is not None:
            type_text += f", {key.minimum}..{key.maximum}"
        description = key.description
        if key.members == MEASURANDS:
            description += " Members: measurands (listed below the table)."
        elif key.members:
            description += " Members: " + ", ".join(key.members) + "."
        if key.source is not Source.OCPP16:
            description += f" ({key.source.value})"
        settable = "" if key.access is Access.READ_WRITE else " — not settable"
        lines.append(
            f"| `{key.name}` | {type_text} | {key.access.value}{settable} | {key.profile} "
            f"| {'yes' if key.required else ''} | {_md(description)} |"
        )
    return [*lines, "", "Measurands: " + ", ".join(f"`{m}`" for m in MEASURANDS) + ".", ""]


def render_reference(directory: Path | None = None) -> str:
    """The Markdown reference for the schemas in ``directory`` (default: the repository's schemas/)."""
    resolver = _Resolver(directory or schemas_dir())
    renderer = _Renderer(resolver)
    by_kind: dict[str, tuple[str, Schema]] = {}
    for file_name, schema in resolver.files.items():
        if file_name != COMMON_FILE:
            by_kind[str(schema.get("title", file_name))] = (file_name, schema)
    kinds = [k for k in KIND_ORDER if k in by_kind] + sorted(set(by_kind) - set(KIND_ORDER))

    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated from schemas/ by `{GENERATOR}`. Do not edit by hand. -->",
        "",
        "Every document in an owner repository has `apiVersion: chargeops.io/v1`, a `kind`, `metadata` "
        "and a `spec`. This reference lists every field of every kind. *Field* is the path in the "
        "document (`[]` marks the items of a list); *Default* is what applies when the field is left out.",
        "",
        "Kinds: " + ", ".join(f"[{k}](#{k.lower()})" for k in kinds) + f". Also: [shared value types]"
        f"(#{SHARED_ANCHOR}), [OCPP 1.6 configuration keys](#{OCPP_KEYS_ANCHOR}).",
        "",
    ]
    for kind in kinds:
        file_name, schema = by_kind[kind]
        lines += [f"## {kind}", "", _md(str(schema.get("description", ""))).replace("\\|", "|"), ""]
        lines += [f"Schema: `schemas/{file_name}`.", ""]
        for i, table in enumerate(renderer.tables(schema, file_name, "", "")):
            heading = f"### {kind}: top level" if i == 0 else f"#### `{table.path}`"
            lines += _render_table(table, heading)
    lines += _render_shared_types(renderer)
    lines += _render_ocpp_keys()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description="Generate docs/reference.md from schemas/.")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/reference.md is out of date")
    args = parser.parse_args(argv)
    target = reference_path()
    text = render_reference()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            print(f"{target} is out of date; run `{GENERATOR}` and commit the result", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
