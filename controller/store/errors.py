"""Exceptions raised by the store, all in one place.

Boundary: this module only defines the tree; the engine decides which SQLite failure maps to which.

    StoreError                 base class; catch it to handle anything the store raises on purpose
    ├── StoreUnavailable       TEMPORARY: the write was not committed (disk full, read-only file,
    │                          I/O error, database locked, reader failure). Nothing of the failed
    │                          batch is stored. Retry later; for transaction messages do not answer
    │                          the charger, close its socket so that it keeps its queue and re-sends.
    ├── StoreClosed            PERMANENT for this object: the store was closed; no write was queued.
    └── SchemaTooNew           PERMANENT: the database was written by a newer chargeops; upgrade.

Anything else that escapes a store call (``sqlite3.IntegrityError``, ``ValueError`` for a naive
datetime...) is a programming error of the caller or of the store and fails that one call only; the
other writes of the same group commit are unaffected.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the errors the store raises on purpose."""


class StoreUnavailable(StoreError):
    """Temporary: the store could not commit (or read); nothing of the failed batch was stored."""


class StoreClosed(StoreError):
    """The store was closed before the call was queued."""


class SchemaTooNew(StoreError):
    """The database schema is newer than this program knows; upgrade chargeops, never downgrade."""
