"""Test kit for the reconcilers: small owner repositories, observed chargers and a fake charger.

`FakeCharger` plays a charger and the controller's bookkeeping at once: it applies a plan's actions the
way a charger answers them (answers can be scripted per key) and keeps what the runtime would record
(applied values, refusals, pending reboot, list version + snapshot hash, ClearCache generation), so a
second look can be planned against the result. Snapshots are kept by content hash, as the store does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from controller.config import DesiredState
from controller.config.access import ListEntry
from controller.reconcilers import Kind, ObservedStation, Plan, plan_station
from controller.reconcilers.observed import ObservedKey, PendingReboot, Refusal, observed_station, secret_digest
from controller.reconcilers.planner import local_list_snapshot

from ..config.ownerrepo import (  # noqa: F401  (re-exported for the test modules)
    Doc,
    card,
    card_list,
    desired,
    doc,
    evse,
    group,
    owner,
    policy,
    profile,
    station,
    tariff,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 17, 10, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Amsterdam

BASE_CONFIG: dict[str, str] = {
    "SupportedFeatureProfiles": "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger",
    "GetConfigurationMaxKeys": "50",
    "LocalAuthListMaxLength": "10000",
    "SendLocalListMaxLength": "10000",
    "NumberOfConnectors": "2",
    "HeartbeatInterval": "300",
    "MeterValueSampleInterval": "60",
    "ConnectionTimeOut": "60",
    "AuthorizationCacheEnabled": "true",
    "LocalAuthListEnabled": "false",
    "LocalAuthorizeOffline": "false",
    "AllowOfflineTxForUnknownId": "false",
    "LocalPreAuthorize": "false",
    "StopTransactionOnInvalidId": "true",
}


def charger(identity: str = "ST-1", config: Mapping[str, str | None] | None = None, *,
            drop: Iterable[str] = (), connectors: Mapping[int, str] | None = None, **fields: Any) -> ObservedStation:
    """A well-behaved charger that matches a default station: BASE_CONFIG updated by `config`."""
    cfg: dict[str, str | None] = {k: v for k, v in BASE_CONFIG.items() if k not in set(drop)}
    cfg.update(config or {})
    fields.setdefault("local_list_version", 0)
    return observed_station(identity, cfg, read_at=NOW - dt.timedelta(minutes=5),
                            connectors=connectors if connectors is not None else {0: "Available", 1: "Available"},
                            **fields)


def repo(*docs: Doc, base: tuple[Doc, ...] | None = None) -> DesiredState:
    return desired(*(base if base is not None else (owner(),)), *docs)


def kinds(plan: Plan) -> list[str]:
    return [a.kind.value for a in plan.actions]


def changed_keys(plan: Plan) -> list[str]:
    return [str(a.payload["key"]) for a in plan.actions if a.kind is Kind.CHANGE_CONFIGURATION]


@dataclasses.dataclass
class FakeCharger:
    """A charger plus the controller's records about it; `apply` plays a plan, `observed` reads it back."""

    obs: ObservedStation
    answers: dict[str, str] = dataclasses.field(default_factory=dict)  # upper-case key -> answer
    snapshots: dict[str, tuple[ListEntry, ...]] = dataclasses.field(default_factory=dict)
    list_entries: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # upper idTag -> entry
    sent: list[Kind] = dataclasses.field(default_factory=list)
    list_answer: str = "Accepted"

    @property
    def snapshot_entries(self) -> tuple[ListEntry, ...] | None:
        h = self.obs.local_list_hash
        return None if h is None else self.snapshots.get(h)

    def plan(self, ds: DesiredState, now: dt.datetime = NOW, **kw: Any) -> Plan:
        snap = local_list_snapshot(ds, self.obs.identity, self.obs, now)
        if snap is not None:
            self.snapshots[snap[0]] = snap[1]
        return plan_station(ds, self.obs.identity, self.obs, now, snapshot_entries=self.snapshot_entries, **kw)

    def apply(self, plan: Plan, now: dt.datetime = NOW) -> None:
        o = self.obs
        config = dict(o.configuration)
        applied, refused = dict(o.applied), dict(o.refused)
        pending = dict(o.pending_reboot.keys) if o.pending_reboot else {}
        since = o.pending_reboot.since if o.pending_reboot else now
        fields: dict[str, Any] = {}
        for a in plan.actions:
            self.sent.append(a.kind)
            p = a.payload
            if a.kind is Kind.CHANGE_CONFIGURATION:
                key, value = str(p["key"]), str(p["value"])
                up = key.upper()
                answer = self.answers.get(up, "Accepted")
                if answer == "Accepted":
                    if a.secret:
                        fields.setdefault("write_only_sent", dict(o.write_only_sent))[up] = secret_digest(value)
                    else:
                        config[up] = ObservedKey(config[up].key if up in config else key, value, False)
                        applied[up] = value
                    refused.pop(up, None)
                elif answer == "RebootRequired":
                    pending[up] = value
                else:
                    refused[up] = Refusal(answer, value, now)
            elif a.kind is Kind.SEND_LOCAL_LIST:
                if self.list_answer != "Accepted":
                    fields["local_list_mismatch"] = True
                    break
                if p["updateType"] == "Full":
                    self.list_entries = {}
                for e in p["localAuthorizationList"]:
                    if "idTagInfo" in e:
                        self.list_entries[e["idTag"].upper()] = e
                    else:
                        self.list_entries.pop(e["idTag"].upper(), None)
                fields["local_list_version"] = p["listVersion"]
                fields["local_list_hash"] = a.record["localListHash"]
                fields["local_list_mismatch"] = False
            elif a.kind is Kind.CLEAR_CACHE:
                fields["cache_cleared_hash"] = a.record["cacheClearedHash"]
            elif a.kind is Kind.CHANGE_AVAILABILITY:
                c, t = p["connectorId"], p["type"]
                status = "Unavailable" if t == "Inoperative" else "Available"
                conns = dict(fields.get("connectors", o.connectors))
                busy = o.sessions if c == 0 else o.sessions & {c}
                if busy and t == "Inoperative":
                    fields.setdefault("scheduled_availability", dict(o.scheduled_availability))[c] = t
                    continue
                for k in (list(conns) if c == 0 else [c]):
                    conns[k] = status
                conns[c] = status
                fields["connectors"] = conns
            elif a.kind is Kind.RESET:
                for up, value in pending.items():
                    config[up] = ObservedKey(config[up].key if up in config else up, value, False)
                    applied[up] = value
                pending = {}
        self.obs = dataclasses.replace(
            o, configuration=config, applied=applied, refused=refused,
            pending_reboot=PendingReboot(since, pending) if pending else None, **fields)
