"""Test kit for controller.hw: an asyncio runner with a task-leak check, the official OCPP 1.6 schemas,
and a tiny central-system stub (a real websockets server on localhost port 0) built on OcppConnection.

The stub answers the charge point's calls like a permissive central system, records every call, and
validates each incoming payload against the official schema (violations are collected, not raised, so a
test can assert there were none).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import jsonschema
import ocpp
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from controller.hw.connection import ConnectionLimits, OcppConnection, websocket_options
from controller.hw.ocppj import Call, format_datetime
from controller.hw.port import ChargerPort

T = TypeVar("T")
SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"


def run(coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
    """asyncio.run with an overall timeout and a check that the test left no task running."""

    async def main() -> T:
        async with asyncio.timeout(timeout):
            result = await coro
        await asyncio.sleep(0)
        leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert not leaked, f"tasks leaked: {leaked}"
        return result

    return asyncio.run(main())


# -------------------------------------------------------------------------------------- schemas

_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@cache
def validator(action: str, response: bool = False) -> Any:
    schema = json.loads((SCHEMAS / f"{action}{'Response' if response else ''}.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=_FORMATS)


def schema_errors(action: str, payload: Mapping[str, Any], response: bool = False) -> list[str]:
    errors = validator(action, response).iter_errors(payload)
    return [f"{action}: {e.message} at {list(e.absolute_path)}" for e in errors]


# ----------------------------------------------------------------------------------- CSMS stub


class CsmsStub:
    """A permissive central system for simulator and connection tests."""

    def __init__(
        self,
        *,
        boot_status: str = "Accepted",
        heartbeat_interval: int = 60,
        cards: Mapping[str, Mapping[str, Any]] | None = None,
        limits: ConnectionLimits | None = None,
        passwords: Mapping[str, str] | None = None,
    ) -> None:
        self.boot_status = boot_status
        self.heartbeat_interval = heartbeat_interval
        self.cards = dict(cards or {})
        self.limits = limits or ConnectionLimits()
        self.passwords = dict(passwords or {})
        self.conns: dict[str, OcppConnection] = {}
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.schema_violations: list[str] = []
        self.closes: list[tuple[str, int | None]] = []
        self.extra_handlers: dict[str, Callable[[str, Call], Awaitable[Mapping[str, Any]]]] = {}
        self._tx_ids = itertools.count(1000)
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ocpp"

    async def __aenter__(self) -> CsmsStub:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol("ocpp1.6")],
            select_subprotocol=lambda conn, offered: Subprotocol("ocpp1.6") if "ocpp1.6" in offered else None,
            process_request=self._authenticate,
            **websocket_options(self.limits),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task

    def _authenticate(self, conn: ServerConnection, request: Any) -> Any:
        identity = unquote(request.path.rstrip("/").rsplit("/", 1)[-1])
        expected = self.passwords.get(identity)
        if expected is None:
            return None
        import base64

        header = request.headers.get("Authorization", "")
        accepted = [expected.encode()]
        with contextlib.suppress(ValueError):
            accepted.append(bytes.fromhex(expected))  # the key's raw bytes, as some firmware sends
        tokens = {"Basic " + base64.b64encode(identity.encode() + b":" + secret).decode() for secret in accepted}
        if header not in tokens:
            return conn.respond(401, "Unauthorized\n")
        return None

    def events_of(self, action: str, identity: str | None = None) -> list[dict[str, Any]]:
        return [p for who, a, p in self.events if a == action and identity in (None, who)]

    def port(self, identity: str, **options: Any) -> ChargerPort:
        """A port that follows the station's newest connection and checks both directions' schemas."""
        return ChargerPort(ValidatingTransport(self, identity), **options)

    async def wait_connected(self, identity: str, timeout: float = 5.0) -> OcppConnection:
        async with asyncio.timeout(timeout):
            while identity not in self.conns or self.conns[identity].closed:
                await asyncio.sleep(0.01)
        return self.conns[identity]

    async def wait_event(self, action: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.events_of(action)) < count:
                await asyncio.sleep(0.01)
        return self.events_of(action)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        identity = unquote(ws.request.path.rstrip("/").rsplit("/", 1)[-1])
        conn = OcppConnection(ws, identity, self._handlers(identity), limits=self.limits, default_timeout=2.0)
        old = self.conns.get(identity)
        self.conns[identity] = conn
        if old is not None:
            old.replace()
        await conn.run()
        self.closes.append((identity, ws.close_code))

    def _handlers(self, identity: str) -> dict[str, Callable[[Call], Awaitable[Mapping[str, Any]]]]:
        actions = (
            "BootNotification", "Heartbeat", "StatusNotification", "Authorize", "StartTransaction",
            "MeterValues", "StopTransaction", "DataTransfer", "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
        )

        def make(action: str) -> Callable[[Call], Awaitable[Mapping[str, Any]]]:
            async def handler(call: Call) -> Mapping[str, Any]:
                self.events.append((identity, action, call.payload))
                self.schema_violations += schema_errors(action, call.payload)
                if action in self.extra_handlers:
                    return await self.extra_handlers[action](identity, call)
                return self._answer(action, call.payload)

            return handler

        return {action: make(action) for action in actions}

    def _answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC).replace(microsecond=0))
        if action == "BootNotification":
            return {"status": self.boot_status, "currentTime": now, "interval": self.heartbeat_interval}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action == "Authorize":
            return {"idTagInfo": self._card(payload.get("idTag", ""))}
        if action == "StartTransaction":
            return {"transactionId": next(self._tx_ids), "idTagInfo": self._card(payload.get("idTag", ""))}
        if action == "StopTransaction":
            return {"idTagInfo": self._card(payload["idTag"])} if "idTag" in payload else {}
        if action == "DataTransfer":
            return {"status": "UnknownVendorId"}
        return {}

    def _card(self, id_tag: str) -> dict[str, Any]:
        return dict(self.cards.get(id_tag.upper(), {"status": "Invalid"}))


class ValidatingTransport:
    """A CallTransport over the stub's newest connection of a station, schema-checking what goes and comes."""

    def __init__(self, stub: CsmsStub, identity: str) -> None:
        self.stub = stub
        self.station_id = identity

    async def call(self, action: str, payload: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        self.stub.schema_violations += schema_errors(action, payload)
        reply = await self.stub.conns[self.station_id].call(action, payload, **options)
        self.stub.schema_violations += schema_errors(action, reply, response=True)
        return reply
