"""Persistent store (DESIGN §2 Persistence): the ``Store`` interface and its SQLite implementation.

Modules: ``api`` (the protocol the controller uses), ``records`` (frozen dataclasses), ``errors``
(the exception tree), ``sqlite`` (``SqliteStore``), ``engine`` (writer thread with group commit and
reader pool), ``schema`` (versioned migrations), ``sql_*`` (queries), ``redact`` (``mask_id_tag`` and
audit redaction for everyone), ``credentials`` (AuthorizationKey fingerprints and checks).
"""

from controller.store.api import Store
from controller.store.errors import SchemaTooNew, StoreClosed, StoreError, StoreUnavailable
from controller.store.redact import mask_id_tag, redact
from controller.store.sqlite import SqliteStore

__all__ = [
    "SchemaTooNew",
    "SqliteStore",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "mask_id_tag",
    "redact",
]
