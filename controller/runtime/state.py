"""The desired state in force, swapped atomically when a newer valid revision is loaded.

A bad revision never replaces a good one: `offer()` keeps the last good desired state and records the
error (with file and line) so status can show it. Effective per-station results are cached per
revision and boot information, since every OCPP message needs them.

Boundary: in-memory state only; loading from git or a directory lives in the sources.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Sequence

from controller.config.diagnostics import Diagnostic
from controller.config.effective import BootInfo, EffectiveStation, effective_station
from controller.config.model import DesiredState, Station

log = logging.getLogger("chargeops.runtime.state")


@dataclasses.dataclass(frozen=True, slots=True)
class RevisionFailure:
    revision: str
    at: dt.datetime
    errors: tuple[Diagnostic, ...]


class DesiredHolder:
    """Holds the desired state in force; readers always see one whole revision."""

    def __init__(self, desired: DesiredState | None = None):
        self._desired = desired
        self._lock = threading.Lock()
        self._eff_cache: dict[tuple[str, str, BootInfo | None], EffectiveStation] = {}
        self.last_failure: RevisionFailure | None = None
        self.known_identities: set[str] = set()  # every identity ever declared (upper-case), for removals
        # the revision whose tariffs, groups and assignments the store's tariff history is known to hold
        # (set by `controller.billing.history.record_in_force`): it is not recorded again
        self.history_recorded: str | None = None
        if desired is not None:
            self.known_identities |= set(desired.stations_by_identity)

    @property
    def desired(self) -> DesiredState | None:
        return self._desired

    @property
    def revision(self) -> str | None:
        return self._desired.revision if self._desired else None

    def offer(self, desired: DesiredState | None, revision: str, errors: Sequence[Diagnostic] = ()) -> bool:
        """Take a newly loaded revision if it is valid; otherwise keep the last good one. True if taken."""
        if desired is None:
            self.last_failure = RevisionFailure(revision, dt.datetime.now(dt.UTC), tuple(errors))
            first = errors[0] if errors else None
            log.error("revision %s is invalid (%d error(s)%s); keeping %s", revision, len(errors),
                      f", first: {first.location()}: {first.message}" if first else "", self.revision)
            return False
        with self._lock:
            self._desired = desired
            self._eff_cache = {}
            self.known_identities |= set(desired.stations_by_identity)
        self.last_failure = None
        log.info("desired state now at revision %s (%d stations)", desired.revision, len(desired.stations))
        return True

    def station(self, identity: str) -> Station | None:
        d = self._desired
        return d.station_for_identity(identity) if d else None

    def effective(self, identity: str, boot: BootInfo | None = None) -> EffectiveStation | None:
        d = self._desired
        if d is None:
            return None
        st = d.station_for_identity(identity)
        if st is None:
            return None
        key = (d.revision, st.name, boot)
        eff = self._eff_cache.get(key)
        if eff is None:
            eff = effective_station(d, st, boot)
            if len(self._eff_cache) > 50_000:
                self._eff_cache.clear()
            self._eff_cache[key] = eff
        return eff

    def was_declared(self, identity: str) -> bool:
        return identity.upper() in self.known_identities
