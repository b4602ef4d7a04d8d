"""Configuration reconciler: declared OCPP keys -> ChangeConfiguration for exactly the keys that differ.

Desired keys: the station's merged `ocpp_configuration` (owner defaults < profiles < station, plus the keys
chargeops derives: offline authorization, restricted access, de-activation), `HeartbeatInterval` equal to
the interval given at boot (so a boot never looks like drift), vendor keys, and write-only credentials
passed in by the shell (`secrets`, resolved outside the pure core).

Per key (`key_change`, shared with the pricing reconciler):
- names compare case-insensitively and the charger's spelling goes on the wire; values compare with
  `ocpp16_keys.values_equal` (booleans, integers, lists, JSON normalised); vendor keys exactly;
- read-only keys (capabilities) are never set; keys the charger reports unknown, or that need a feature
  profile / California Pricing support it lacks, are skipped with a note;
- a key refused (NotSupported / Rejected) for the same value is not retried until the value changes;
- a value waiting for a reboot (RebootRequired) is not sent again;
- write-only keys (AuthorizationKey) compare by the digest of what we sent, never by value;
- drift (the charger differs from a value we applied) is healed, or only reported for warn-only keys.
  A warn-only key is still written when the owner changes its value (it differs from what we applied).

`with_read_back` appends one GetConfiguration for the changed keys (chunked by GetConfigurationMaxKeys).
`reboot` plans the deferred Reset: only while a reboot is pending, no session runs (unless
rebootDuringSessions) and inside a reboot window, or once maxRebootDeferralHours have passed.

Boundary: pure; effective station + observed station + now in, a `Part` out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from controller.config.effective import EffectiveStation
from controller.config.ocpp16_keys import (
    READ_ONLY_KEYS,
    WRITE_ONLY_KEYS,
    Source,
    lookup,
    normalize_value,
    values_equal,
)

from . import clock
from .actions import (
    SECRET_PLACEHOLDER,
    Action,
    Change,
    Effects,
    Kind,
    Note,
    Op,
    Part,
    Phase,
    deferred,
    earliest,
    info,
    warning,
)
from .observed import ObservedStation, secret_digest

DEFAULT_MAX_REBOOT_DEFERRAL_HOURS = 24
FEATURE_PROFILE_KEYS = ("LocalAuthListManagement", "Reservation", "SmartCharging")


def canonical(name: str) -> str:
    meta = lookup(name)
    return meta.name if meta is not None and "," not in name else name


def key_change(observed: ObservedStation, key: str, desired: str, *, reason: str,
               phase: Phase = Phase.FEATURES, warn_only: bool = False,
               only_if_reported: bool = False) -> Action | Note | None:
    """The ChangeConfiguration that makes `key` equal `desired`, a Note saying why not, or None (in sync).

    `only_if_reported`: skip (silently) a key the charger did not report, for optional keys.
    """
    upper = key.upper()
    meta = lookup(key)
    name = meta.name if meta is not None and "," not in key else key  # canonical(key)
    if upper in READ_ONLY_KEYS:
        return info(f"{name} is read-only (a capability of the charger) and is never set", name)
    if meta is not None and meta.profile in FEATURE_PROFILE_KEYS and not observed.supports(meta.profile):
        return info(f"{name} not set: the charger does not support the {meta.profile} feature profile", name)
    if meta is not None and meta.source is Source.CALIFORNIA_PRICING and not observed.custom_display_cost_and_price:
        return info(f"{name} not set: the charger does not support California Pricing "
                    "(CustomDisplayCostAndPrice is not true)", name)
    obs = observed.configuration.get(upper)
    if obs is None and upper in observed.unknown_keys:
        return warning(f"{name} not set: the charger reports the key as unknown", name)
    if obs is None and only_if_reported:
        return None
    if obs is not None and obs.readonly:
        return warning(f"{name} not set: it is read-only on this charger (it reports {obs.value!r})", name)
    wire = normalize_value(meta, desired)
    wire_key = obs.key if obs is not None else name
    if upper in WRITE_ONLY_KEYS:
        digest = secret_digest(wire)
        if observed.write_only_sent.get(upper) == digest:
            return None
        return Action(phase, Kind.CHANGE_CONFIGURATION, {"key": wire_key, "value": wire}, reason,
                      Change(name, SECRET_PLACEHOLDER if upper in observed.write_only_sent else None,
                             SECRET_PLACEHOLDER),
                      op=Op.CHANGE if upper in observed.write_only_sent else Op.ADD,
                      record={"writeOnlySent": {upper: digest}}, secret=True)
    pending = observed.pending_reboot
    if pending is not None and upper in pending.keys and values_equal(meta, pending.keys[upper], wire):
        return info(f"{name} = {wire} was accepted and waits for a reboot", name)
    current = obs.value if obs is not None else None
    if current is not None and values_equal(meta, wire, current):
        return None
    sent = observed.unconfirmed.get(upper)
    if sent is not None and values_equal(meta, sent, wire):  # accepted, the read-back was lost: read only
        return Action(phase, Kind.GET_CONFIGURATION, {"key": [wire_key]},
                      f"{name} = {wire} was accepted; read it back (the last read-back did not arrive)",
                      Change("read back", None, name), op=Op.READ, record={"readBackOnly": name})
    refusal = observed.refused.get(upper)
    if refusal is not None and values_equal(meta, refusal.value, wire):
        return warning(f"{name} = {wire} was answered {refusal.status} by the charger; not retried until the "
                       "declared value changes", name)
    applied = observed.applied.get(upper)
    drift = current is not None and applied is not None and values_equal(meta, applied, wire)
    if drift and warn_only:
        return warning(f"drift: {name} is {current} at the charger, declared {wire} "
                       "(warn-only: reported, not healed)", name)
    why = f"drift: changed at the charger to {current}; healed ({reason})" if drift else reason
    return Action(phase, Kind.CHANGE_CONFIGURATION, {"key": wire_key, "value": wire}, why,
                  Change(name, current, wire), op=Op.ADD if obs is None else Op.CHANGE,
                  record={"applied": {upper: wire}}, drift=drift)


def desired_keys(eff: EffectiveStation) -> list[tuple[str, str, str]]:
    """(key, value, reason) for every key the station should have, sorted by name (vendor keys included)."""
    out: dict[str, tuple[str, str, str]] = {}
    for key, value in eff.ocpp_configuration.items():
        why = eff.derived_keys.get(key)
        out[key.upper()] = (key, value, f"set by chargeops: {why}" if why else "declared")
    if "HEARTBEATINTERVAL" not in out:
        out["HEARTBEATINTERVAL"] = ("HeartbeatInterval", str(eff.heartbeat_interval),
                                    "the heartbeat interval given at boot (default)")
    for key, value in eff.vendor_configuration.items():
        out.setdefault(key.upper(), (key, value, "declared (vendor key)"))
    return [out[k] for k in sorted(out)]


def collect(results: Sequence[Action | Note | None]) -> Part:
    """Actions, notes and the number of keys in sync from `key_change` results."""
    actions: list[Action] = []
    notes: list[Note] = []
    unchanged = 0
    for r in results:
        if r is None:
            unchanged += 1
        elif isinstance(r, Action):
            actions.append(r)
        else:
            notes.append(r)
    return Part(tuple(actions), tuple(notes), None, unchanged)


def plan(eff: EffectiveStation, observed: ObservedStation, now: dt.datetime, *, tz: dt.tzinfo = dt.UTC,
         secrets: Mapping[str, str] | None = None) -> Part:
    """ChangeConfiguration for every differing key (features phase; credentials for write-only keys),
    then the deferred Reset if a reboot is pending (see `reboot`)."""
    results: list[Action | Note | None] = []
    warn_only = eff.drift_warn_only
    for key, value, why in desired_keys(eff):
        upper = key.upper()
        if upper in WRITE_ONLY_KEYS:
            continue  # credentials come from `secrets`, never from repository files
        results.append(key_change(observed, key, value, reason=why, warn_only=upper in warn_only))
    for key, value in sorted((secrets or {}).items()):
        results.append(key_change(observed, key, value, phase=Phase.CREDENTIALS,
                                  reason="the station's credentials"))
    return collect(results) + reboot(eff, observed, now, tz=tz)


def reboot(eff: EffectiveStation, observed: ObservedStation, now: dt.datetime, *, tz: dt.tzinfo) -> Part:
    """A Reset when a pending reboot may happen now, else a deferral note and when to look again."""
    pending = observed.pending_reboot
    if pending is None:
        return Part()
    m = eff.maintenance
    keys = ", ".join(sorted(canonical(k) for k in pending.keys)) or "configuration changes"
    max_hours = m.max_reboot_deferral_hours or DEFAULT_MAX_REBOOT_DEFERRAL_HOURS
    overdue_at = pending.since + dt.timedelta(hours=max_hours)
    overdue = now >= overdue_at
    windows = m.reboot_windows
    in_window = windows is None or clock.window_at(windows, now, tz) is not None
    sessions = sorted(observed.sessions)
    if sessions and not m.reboot_during_sessions:
        where = ", ".join(str(c) for c in sessions)
        return Part(notes=(deferred(f"reboot to apply {keys} waits until the session on connector {where} ends "
                                    "(sessions are never cut)", "Reset"),))
    if in_window or overdue:
        when = ("inside the reboot window" if windows is not None and in_window
                else "no reboot window declared" if windows is None
                else f"maximum deferral of {max_hours} h reached")
        cut = bool(sessions)
        why = f"apply {keys} (RebootRequired since {clock.format_instant(pending.since)}; {when})"
        if cut:
            why += "; rebootDuringSessions allows cutting the running session"
        return Part(actions=(Action(Phase.RESET, Kind.RESET, {"type": "Soft"}, why,
                                    Change("reboot", "pending", "Soft reset"), op=Op.RUN,
                                    effects=Effects(reboot_needed=True, affects_running_session=cut)),))
    assert windows is not None
    nxt = earliest(clock.next_boundary(windows, now, tz, starts_only=True), overdue_at)
    return Part(notes=(deferred(f"reboot to apply {keys} deferred to the next reboot window "
                                f"(at the latest {clock.format_instant(overdue_at)}, the maximum deferral)",
                                "Reset"),), next_review_at=nxt)


def with_read_back(actions: Sequence[Action], max_keys: int | None = None) -> tuple[Action, ...]:
    """`actions` with GetConfiguration read-backs of the changed (readable) keys after the last change;
    keys only waiting for a read-back (`readBackOnly`) join the same read."""
    only = [str(k) for a in actions if a.kind is Kind.GET_CONFIGURATION and a.record.get("readBackOnly")
            for k in a.payload["key"]]
    if only:
        first = next(a for a in actions if a.kind is Kind.GET_CONFIGURATION and a.record.get("readBackOnly"))
        actions = [a for a in actions if not (a.kind is Kind.GET_CONFIGURATION and a.record.get("readBackOnly"))]
    changed = [(i, a) for i, a in enumerate(actions)
               if a.kind is Kind.CHANGE_CONFIGURATION and not a.secret]
    if not changed and not only:
        return tuple(actions)
    if changed:
        last_index, last = changed[-1]
    else:  # nothing to write: the read goes where the first key was planned (its phase, before the rest)
        last_index = next((i for i, a in enumerate(actions) if a.phase > first.phase), len(actions)) - 1
        last = first
    keys = list(dict.fromkeys([*(str(a.payload["key"]) for _, a in changed), *only]))
    size = max_keys if max_keys and max_keys > 0 else len(keys)
    reads = tuple(
        Action(last.phase, Kind.GET_CONFIGURATION, {"key": keys[i:i + size]},
               "read back what was changed", Change("read back", None, ", ".join(keys[i:i + size])), op=Op.READ)
        for i in range(0, len(keys), size))
    return (*actions[:last_index + 1], *reads, *actions[last_index + 1:])
