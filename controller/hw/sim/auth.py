"""The simulated charger's local authorization list and authorization cache.

Role: OCPP 1.6 §3.5 semantics. The local list has a version (0 = empty), a capacity
(LocalAuthListMaxLength) and a per-message limit (SendLocalListMaxLength); Full replaces it, Differential
adds/updates entries with an idTagInfo and deletes entries without one, and needs a version above the
current one (else VersionMismatch). The cache remembers idTagInfo from Authorize/StartTransaction answers;
ClearCache empties it. idTags are matched case-insensitively. Boundary: no I/O; the charger decides when
to consult which (LocalPreAuthorize, LocalAuthorizeOffline, AllowOfflineTxForUnknownId).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.v16.enums import AuthorizationStatus, UpdateStatus, UpdateType

from controller.hw.ocppj import parse_datetime


@dataclass(frozen=True, slots=True)
class AuthEntry:
    status: str
    expiry: datetime | None = None
    parent_id_tag: str | None = None

    @classmethod
    def from_payload(cls, info: dict[str, Any]) -> AuthEntry:
        parent = info.get("parentIdTag")
        return cls(
            str(info.get("status", AuthorizationStatus.invalid.value)),
            parse_datetime(info.get("expiryDate")),
            parent if isinstance(parent, str) else None,
        )

    def effective_status(self, now: datetime) -> str:
        if self.status == AuthorizationStatus.accepted.value and self.expiry is not None and self.expiry <= now:
            return AuthorizationStatus.expired.value
        return self.status

    def to_payload(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.effective_status(now)}
        if self.parent_id_tag:
            out["parentIdTag"] = self.parent_id_tag
        return out


class _ListError(Exception):
    pass


class LocalAuthList:
    def __init__(self, capacity: int, per_message: int) -> None:
        self.capacity = capacity
        self.per_message = per_message
        self.version = 0
        self.entries: dict[str, AuthEntry] = {}

    def lookup(self, id_tag: str) -> AuthEntry | None:
        return self.entries.get(id_tag.upper())

    def apply(self, version: int, update_type: str, items: list[Any]) -> UpdateStatus:
        """SendLocalList.req: returns the status and changes nothing unless Accepted."""
        if self.capacity <= 0:
            return UpdateStatus.not_supported
        if len(items) > self.per_message:
            return UpdateStatus.failed
        try:
            parsed = [self._item(item) for item in items]
        except _ListError:
            return UpdateStatus.failed
        if update_type == UpdateType.full.value:
            new = {tag: entry for tag, entry in parsed if entry is not None}
        elif update_type == UpdateType.differential.value:
            if version <= self.version:
                return UpdateStatus.version_mismatch
            new = dict(self.entries)
            for tag, entry in parsed:
                if entry is None:
                    new.pop(tag, None)
                else:
                    new[tag] = entry
        else:
            return UpdateStatus.failed
        if len(new) > self.capacity:
            return UpdateStatus.failed
        self.entries = new
        self.version = version
        return UpdateStatus.accepted

    @staticmethod
    def _item(item: Any) -> tuple[str, AuthEntry | None]:
        if not isinstance(item, dict) or not isinstance(item.get("idTag"), str):
            raise _ListError()
        info = item.get("idTagInfo")
        if info is not None and not isinstance(info, dict):
            raise _ListError()
        return item["idTag"].upper(), None if info is None else AuthEntry.from_payload(info)

    def clear(self) -> None:
        self.version = 0
        self.entries = {}


class AuthCache:
    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.entries: dict[str, AuthEntry] = {}

    def lookup(self, id_tag: str) -> AuthEntry | None:
        return self.entries.get(id_tag.upper())

    def put(self, id_tag: str, info: dict[str, Any]) -> None:
        key = id_tag.upper()
        self.entries.pop(key, None)
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = AuthEntry.from_payload(info)

    def clear(self) -> None:
        self.entries.clear()
