"""Terraform-style rendering of plans: human text, Markdown (a PR comment) or JSON.

Rendered from the plans' JSON form (`Plan.to_dict(mask=True)`), so what people read and what machines
read are the same data: idTags masked (all but the last 4 characters), secrets never shown.

    # station "st-1" will be updated
      ~ HeartbeatInterval = 900 -> 300  # declared
      <= read back HeartbeatInterval
        (12 unchanged hidden)

    Plan: 0 to add, 1 to change, 0 to remove.

Stations with nothing to do are hidden unless they carry a warning or a deferral.

Boundary: pure; plans in, text out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .actions import Plan, summary

Format = Literal["human", "markdown", "json"]
MAX_DETAILS = 10
_SYMBOL = {"add": "+", "change": "~", "remove": "-", "read": "<=", "run": "!"}


def _val(v: Any) -> str:
    return "(none)" if v is None else str(v)


def _action_lines(a: Mapping[str, Any]) -> list[str]:
    sym = _SYMBOL.get(a["op"], "~")
    kind, ch, p = a["kind"], a.get("change") or {}, a["payload"]
    if kind == "ChangeConfiguration":
        head = (f"{sym} {ch['field']} = {_val(ch['new'])}" if ch.get("old") is None
                else f"{sym} {ch['field']} = {_val(ch['old'])} -> {_val(ch['new'])}")
    elif kind == "GetConfiguration":
        head = f"{sym} read back {', '.join(p.get('key', []))}"
    elif kind == "SendLocalList":
        n = len(p["localAuthorizationList"])
        span = f"{ch['old']} -> {ch['new']}" if ch.get("old") else f"{ch['new']}"
        head = f"{sym} local list {span} ({p['updateType']}, {n:,} entr{'y' if n == 1 else 'ies'})"
    elif kind == "ChangeAvailability":
        head = f"{sym} {ch['field']} = {_val(ch.get('old'))} -> {ch['new']}"
    elif kind == "CancelReservation":
        head = f"{sym} {ch['field']} ({ch['old']}): cancel"
    elif kind == "Reset":
        head = f"{sym} Reset {p.get('type', '')}".rstrip()
    else:
        head = f"{sym} {kind}"
    flags = [f for f, on in (("reboot", a["effects"]["rebootNeeded"]),
                              ("affects a running session", a["effects"]["affectsRunningSession"])) if on]
    if flags:
        head += f" [{', '.join(flags)}]"
    lines = [f"{head}  # {a['reason']}"]
    details = a.get("details") or []
    for d in details[:MAX_DETAILS]:
        if d["old"] is None:
            lines.append(f"    + {d['field']} {d['new']}")
        elif d["new"] is None:
            lines.append(f"    - {d['field']}")
        else:
            lines.append(f"    ~ {d['field']} {d['old']} -> {d['new']}")
    if len(details) > MAX_DETAILS:
        lines.append(f"    … and {len(details) - MAX_DETAILS:,} more")
    return lines


def _shown(p: Mapping[str, Any]) -> bool:
    return bool(p["actions"]) or p["removed"] or not p["observed"] or any(
        n["level"] != "info" for n in p["notes"])


def _title(p: Mapping[str, Any], quote: str = '"') -> str:
    label = p["name"] or p["station"]
    who = f"station {quote}{label}{quote}"
    if p["name"] and p["name"] != p["station"]:
        who += f" (identity {p['station']})"
    if p["removed"]:
        what = "is no longer declared and will be made inert (never reset)" if p["actions"] else \
            "is no longer declared"
    elif not p["observed"]:
        what = "has not been observed yet"
    elif p["actions"]:
        what = "will be updated"
    else:
        what = "is up to date"
    return f"{who} {what}" + ("" if p["online"] else " (offline)")


def _body(p: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for a in p["actions"]:
        lines += _action_lines(a)
    if p["unchanged"]:
        lines.append(f"  ({p['unchanged']} unchanged hidden)")
    return lines


def _notes(p: Mapping[str, Any]) -> list[str]:
    return [f"{n['level']}: {n['text']}" for n in p["notes"]]


def _summary_line(plans: Sequence[Plan]) -> str:
    s = summary(plans)
    if not any(p.actions for p in plans):
        return "No changes. Every observed charger matches the configuration."
    return f"Plan: {s['add']} to add, {s['change']} to change, {s['remove']} to remove."


def _sorted(plans: Sequence[Plan]) -> list[Plan]:
    return sorted(plans, key=lambda p: ((p.name or p.station).lower(), p.station))


def render_human(plans: Sequence[Plan]) -> str:
    out: list[str] = []
    for plan in _sorted(plans):
        p = plan.to_dict(mask=True)
        if not _shown(p):
            continue
        out.append(f"# {_title(p)}")
        out += [f"  {line}" for line in _body(p)]
        out += [f"  {line}" for line in _notes(p)]
        if p["nextReviewAt"]:
            out.append(f"  next review: {p['nextReviewAt']}")
        out.append("")
    out.append(_summary_line(plans))
    return "\n".join(out) + "\n"


def render_markdown(plans: Sequence[Plan]) -> str:
    out = ["### chargeops plan", "", f"**{_summary_line(plans)}**", ""]
    for plan in _sorted(plans):
        p = plan.to_dict(mask=True)
        if not _shown(p):
            continue
        out.append(f"#### {_title(p, quote='`')}")
        out.append("")
        body = _body(p)
        if body:
            out += ["```", *body, "```", ""]
        notes = _notes(p)
        if p["nextReviewAt"]:
            notes.append(f"next review: {p['nextReviewAt']}")
        if notes:
            out += [f"- {n}" for n in notes] + [""]
    return "\n".join(out).rstrip() + "\n"


def render_json(plans: Sequence[Plan]) -> str:
    doc = {"formatVersion": 1, "summary": summary(plans), "changes": any(p.actions for p in plans),
           "plans": [p.to_dict(mask=True) for p in _sorted(plans)]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_plan(plans: Sequence[Plan], fmt: Format = "human") -> str:
    if fmt == "human":
        return render_human(plans)
    if fmt == "markdown":
        return render_markdown(plans)
    if fmt == "json":
        return render_json(plans)
    raise ValueError(f"unknown plan format {fmt!r}; use human, markdown or json")
