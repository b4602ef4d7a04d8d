"""Schema validation of configuration documents, with errors owners can act on.

Each kind has one JSON Schema (draft 2020-12) in `schemas/`; `common.json` holds the shared definitions.
Validation uses `jsonschema_rs` (compiled once per process); `is_valid` runs first so the success path
costs one call per document, and only invalid documents are walked for their errors. Raw validator
messages are rewritten to say what is wrong and how to fix it, with the closest name for unknown fields.

Boundary: dict documents in, diagnostics out. No YAML, no semantics across documents.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import jsonschema_rs

from .diagnostics import Diagnostic, PathElem, format_path, mask_id_tag, suggest
from .schemas_path import schemas_dir

API_VERSION = "chargeops.io/v1"
KINDS = ("Owner", "Station", "StationProfile", "Tariff", "AccessGroup", "CardList", "ReservationPolicy")
_BASE = "https://chargeops.io/schemas/v1/"


@functools.cache
def raw_schemas() -> dict[str, dict[str, Any]]:
    """Every schema file, keyed by file stem (owner, station, ..., common)."""
    out = {}
    for p in sorted(schemas_dir().glob("*.json")):
        out[p.stem] = json.loads(p.read_text(encoding="utf-8"))
    return out


@functools.cache
def validators() -> dict[str, Any]:
    schemas = raw_schemas()
    registry = jsonschema_rs.Registry([(s["$id"], s) for s in schemas.values()])
    return {
        kind: jsonschema_rs.Draft202012Validator(schemas[kind.lower()], registry=registry)
        for kind in KINDS
    }


def check_envelope(doc: Any, file: str, index: int, diags: list[Diagnostic]) -> str | None:
    """Check apiVersion and kind; return the kind when the document can be schema-validated."""
    if not isinstance(doc, dict):
        what = type(doc).__name__ if doc is not None else "empty"
        diags.append(Diagnostic("not-a-document", f"a configuration document must be a mapping, got {what}",
                                file=file, doc=index, hint="start the document with apiVersion: and kind:"))
        return None
    kind = doc.get("kind")
    api = doc.get("apiVersion")
    if kind is None and api is None:
        diags.append(Diagnostic("not-a-document", "document has no apiVersion and no kind: not a chargeops "
                                "configuration document", file=file, doc=index,
                                hint=f"add apiVersion: {API_VERSION} and a kind ({', '.join(KINDS)}), "
                                "or keep this file out of the configuration folder"))
        return None
    if kind not in KINDS:
        near = suggest(str(kind), KINDS)
        hint = f'did you mean "{near}"?' if near else f"use one of: {', '.join(KINDS)}"
        diags.append(Diagnostic("unknown-kind", f"unknown kind {kind!r}", file=file, doc=index,
                                path=("kind",), hint=hint))
        return None
    if api != API_VERSION:
        diags.append(Diagnostic(
            "unknown-api-version", f"apiVersion {api!r} is not supported by this chargeops",
            file=file, doc=index, path=("apiVersion",),
            hint=f"use apiVersion: {API_VERSION} (see docs/versioning.md for migrating other versions)"))
        return None
    return str(kind)


def validate_document(kind: str, doc: dict[str, Any], file: str, index: int,
                      diags: list[Diagnostic]) -> bool:
    """Schema-check one document; append a diagnostic per problem. True when valid."""
    v = validators()[kind]
    try:
        if v.is_valid(doc):
            return True
        errors = list(v.iter_errors(doc))
    except (ValueError, TypeError):  # e.g. a non-string mapping key
        path, key = _first_bad_key(doc)
        diags.append(Diagnostic("non-string-key", f"mapping key {key} is not text", file=file, doc=index,
                                path=path, at_key=True,
                                hint="mapping keys must be plain text; quote keys such as 1: or yes:"))
        return False
    before = len(diags)
    for err in errors:
        diags.extend(_translate(kind, err, file, index))
    if len(diags) == before:  # never report "invalid" without saying why
        diags.append(Diagnostic("schema", "document does not match the schema", file=file, doc=index))
    return False


def _first_bad_key(node: Any, path: tuple[PathElem, ...] = ()) -> tuple[tuple[PathElem, ...], str]:
    """Path to the first mapping key that is not a string (for the position of the error)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                return (*path, str(k)), repr(k)
            found = _first_bad_key(v, (*path, k))
            if found[1]:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _first_bad_key(v, (*path, i))
            if found[1]:
                return found
    return path, ""


def _translate(kind: str, err: Any, file: str, index: int) -> list[Diagnostic]:
    d = _translate_one(kind, err, file, index)
    return d if isinstance(d, list) else [d]


def _translate_one(kind: str, err: Any, file: str, index: int) -> Diagnostic | list[Diagnostic]:
    path: tuple[PathElem, ...] = tuple(err.instance_path)
    name = err.kind.name
    here = format_path(path) or "the document"
    inst = err.instance
    leaf = path[-1] if path else None
    if "idTag" in path or "parentIdTag" in path:  # never show an idTag whole
        inst = mask_id_tag(inst) if isinstance(inst, str) else inst
    if leaf in ("idTag", "parentIdTag") and name in ("type",):
        got = _type_name(inst).split(" (")[0]  # never the value: it is an idTag
        return Diagnostic("idtag-not-string", f"{leaf} must be a quoted string, got {got}",
                          file=file, doc=index, path=path,
                          hint='quote it: YAML reads 00412345 as a number and NO as false')
    if name in ("additionalProperties", "unevaluatedProperties"):
        unexpected = list(getattr(err.kind, "unexpected", []) or [])
        allowed = _allowed_properties(kind, path)
        msgs = []
        if name == "unevaluatedProperties":  # known fields that failed their own checks show up here too
            unexpected = [p for p in unexpected if p not in allowed]
        in_cards = "cards" in path
        for prop in unexpected:
            near = suggest(prop, allowed)
            if in_cards:  # a mis-indented card can put an idTag in key position: never show it whole
                prop = mask_id_tag(prop)
            hint = f'did you mean "{near}"?' if near else (
                f"allowed here: {', '.join(sorted(allowed))}" if allowed else None)
            msgs.append(Diagnostic("unknown-field", f"unknown field {prop!r}", file=file, doc=index,
                                   path=(*path, prop), hint=hint, at_key=True))
        return msgs
    if name == "required":
        missing = getattr(err.kind, "property", None) or _quoted(err.message)
        return Diagnostic("missing-field", f"missing required field {missing!r}", file=file,
                          doc=index, path=path, hint=f"add {missing}: to {here}")
    if name == "type":
        want = getattr(err.kind, "types", None) or getattr(err.kind, "value", None)
        return Diagnostic("wrong-type", f"must be {_types(want)}, got {_type_name(inst)}", file=file,
                          doc=index, path=path, hint=_type_hint(want))
    if name == "enum":
        options = [str(o) for o in (getattr(err.kind, "options", None) or [])]
        near = suggest(str(inst), options)
        hint = f'did you mean "{near}"?' if near else f"use one of: {', '.join(options)}"
        return Diagnostic("invalid-value", f"{inst!r} is not an allowed value", file=file, doc=index,
                          path=path, hint=hint)
    if name == "const":
        return Diagnostic("invalid-value", f"{inst!r} is not allowed here", file=file, doc=index,
                          path=path, hint=f"use {getattr(err.kind, 'expected_value', '')!r}")
    if name == "pattern":
        return Diagnostic("invalid-value", f"{inst!r} does not have the expected form", file=file,
                          doc=index, path=path, hint=_pattern_hint(kind, path))
    if name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return Diagnostic("out-of-range", _limit_message(name, err.kind, inst), file=file, doc=index, path=path)
    if name in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties",
                "uniqueItems"):
        return Diagnostic("invalid-value", _limit_message(name, err.kind, inst), file=file, doc=index,
                          path=path, hint=_size_hint(name, path))
    return Diagnostic("schema", f"does not match the schema ({name})" if "idTag" in path else err.message,
                      file=file, doc=index, path=path, hint=f"see the {here} field in docs/reference.md")


def _limit_message(name: str, kind: Any, inst: Any) -> str:
    limit = getattr(kind, "limit", None)
    texts = {
        "minimum": f"must be at least {limit}, got {inst}",
        "maximum": f"must be at most {limit}, got {inst}",
        "exclusiveMinimum": f"must be more than {limit}, got {inst}",
        "exclusiveMaximum": f"must be less than {limit}, got {inst}",
        "minLength": f"must be at least {limit} character(s) long",
        "maxLength": f"is {len(inst) if isinstance(inst, str) else '?'} characters, at most {limit} allowed",
        "minItems": f"needs at least {limit} item(s)",
        "maxItems": f"allows at most {limit} item(s)",
        "minProperties": f"needs at least {limit} entr{'y' if limit == 1 else 'ies'}",
        "maxProperties": f"allows at most {limit} entr{'y' if limit == 1 else 'ies'}",
        "uniqueItems": "lists the same item twice",
    }
    return texts.get(name, name)


def _quoted(message: str) -> str:
    parts = message.split('"')
    return parts[1] if len(parts) > 2 else message


def _type_name(inst: Any) -> str:
    if inst is None:
        return "nothing (null)"
    if isinstance(inst, bool):
        return f"a boolean ({str(inst).lower()})"
    if isinstance(inst, int | float):
        return f"a number ({inst})"
    if isinstance(inst, str):
        return "text"
    if isinstance(inst, list):
        return "a list"
    if isinstance(inst, dict):
        return "a mapping"
    return type(inst).__name__


def _types(want: Any) -> str:
    names = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
             "object": "a mapping", "array": "a list", "null": "null"}
    if isinstance(want, list | tuple):
        return " or ".join(names.get(str(w), str(w)) for w in want)
    return names.get(str(want), str(want))


def _type_hint(want: Any) -> str | None:
    w = want if isinstance(want, list | tuple) else [want]
    if "string" in [str(x) for x in w]:
        return "quote the value"
    return None


def _pattern_hint(kind: str, path: Sequence[PathElem]) -> str | None:
    leaf = path[-1] if path else None
    hints = {
        "name": "lower-case letters, digits and '-', at most 63 characters (e.g. visitor-bays)",
        "currency": "an ISO 4217 code such as EUR", "country": "an ISO 3166-1 alpha-2 code such as NL",
        "countryCode": "an ISO 3166-1 alpha-2 code such as NL", "partyId": "3 upper-case letters or digits",
        "start": 'HH:MM, quoted: "07:00"', "end": 'HH:MM, quoted: "19:00"',
        "validUntil": 'YYYY-MM-DD, quoted: "2027-12-31"', "driver": "a pseudonymous id such as drv-0001",
        "identity": "letters, digits and * - _ = : + | @ . (at most 48 characters)",
    }
    if isinstance(leaf, str) and leaf in hints:
        return hints[leaf]
    if len(path) >= 2 and path[-2] in ("groups", "includes", "allowedGroups", "publishAllowedTo", "profiles",
                                       "names"):
        return hints["name"]
    if isinstance(leaf, str) and any(w in leaf.lower() for w in ("fee", "price", "perkwh", "perhour")):
        return 'a decimal amount such as "0.35"'
    return None


def _size_hint(name: str, path: Sequence[PathElem]) -> str | None:
    if name == "uniqueItems":
        return "remove the repeated entry"
    if name == "maxLength" and path and path[-1] == "idTag":
        return "OCPP 1.6 idTags are at most 20 characters"
    return None


def _allowed_properties(kind: str, path: Sequence[PathElem]) -> list[str]:
    """Names allowed at a path, for 'did you mean' suggestions (follows $ref and allOf)."""
    schemas = raw_schemas()
    node: Any = schemas[kind.lower()]
    for elem in path:
        node = _resolve(node, schemas)
        if isinstance(elem, int):
            node = node.get("items", {})
        else:
            node = _properties(node, schemas).get(elem, {})
    return sorted(_properties(_resolve(node, schemas), schemas))


def _resolve(node: Any, schemas: dict[str, dict[str, Any]]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        file, _, frag = ref.partition("#")
        doc = schemas[file.removesuffix(".json")] if file else schemas["common"]
        target: Any = doc
        for part in [p for p in frag.split("/") if p]:
            target = target[part]
        node = target
    return node


def _properties(node: Any, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    props = dict(node.get("properties", {}))
    for sub in node.get("allOf", []):
        props.update(_properties(_resolve(sub, schemas), schemas))
    if "$ref" in node:
        props.update(_properties(_resolve(node, schemas), schemas))
    return props
