"""Records of the billing part of the store: tariff history, connector status history, billing records,
adjustments, and what forgetting a driver touched.

Boundary: plain frozen data shared by the store interface (api.py), its SQLite implementation
(sql_billing.py) and the billing package (``controller.billing``), which gives the JSON bodies their
meaning. No SQL and no pricing here.

Money is ``str`` (an exact decimal as text); times of our own clock are aware ``datetime``; charger
times stay text as the charger sent them (or as the billing package normalised them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TariffRevision:
    """A desired revision as taken by the controller: the manifest names content-addressed documents.

    ``manifest`` is canonical JSON (``{"tariffs": {name: hash}, "groups": hash, ...}``); ``documents``
    holds the canonical JSON text of every hash the manifest names.
    """

    revision: str
    taken_at: datetime
    manifest: str
    documents: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TariffRevisionRef:
    """A recorded revision without its documents: `ref` reads it in full (`tariff_revision_by_ref`); the
    manifest names every document by content hash, so it says what the revision resolves to in any database
    (two revisions with one manifest declared the same prices)."""

    ref: int
    revision: str
    taken_at: datetime
    manifest: str


@dataclass(frozen=True, slots=True)
class StatusChangeRecord:
    """One StatusNotification of a connector as received (the history behind ``connector_status``)."""

    station: str
    connector_id: int
    status: str
    timestamp: str | None  # the charger's, verbatim
    received_at: datetime


@dataclass(frozen=True, slots=True)
class BillingRow:
    """One immutable version of a session's billing record.

    ``body`` is canonical JSON without personal data (amounts, lines, times, tariff version...); the
    personal link lives only in ``driver_id`` and ``card`` (masked), which forgetting a driver clears.
    Version 1 is written at StopTransaction; a provisional version 1 (idle fee until unplug) is followed
    by a final version 2 at unplug. The latest version of a transaction is the one that counts.
    """

    transaction_id: int
    version: int
    final: bool
    booked_at: datetime  # our clock, when this version was written
    station: str
    connector_id: int | None
    driver_id: str | None
    card: str | None  # masked idTag (last 4 characters)
    group: str | None  # the driver's own access group
    currency: str
    net: str
    tax: str
    total: str
    under_review: bool
    session_start: str | None  # the charger's start time, ISO 8601 UTC
    body: str


@dataclass(frozen=True, slots=True)
class BillingAdjustment:
    """An append-only correction or refund of a session (``amount`` negative for a refund)."""

    id: int  # 0 until stored
    transaction_id: int
    amount: str
    currency: str
    reason: str
    created_at: datetime
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What forgetting a driver changed (personal links removed; amounts untouched)."""

    billing_records: int
    transactions: int
    frames: int
    reservations: int
