"""Protocol conformance of the central system: every answer valid against the official OCPP 1.6 response
schemas, the remaining charger messages, security profile 2 over TLS, subprotocol negotiation, health."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import urllib.request
from asyncio import sslproto
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from controller.hw.server import ServerSettings
from tests.config.ownerrepo import card, group, owner, station
from tests.hw.kit import schema_errors

from .harness import csms, desired_of, run

KEY = "00112233445566778899aabbccddeeff"


def test_every_answer_of_a_session_is_valid_against_the_official_schemas(tmp_path: Path) -> None:
    desired = desired_of(owner(), group("g", card("CARD-0001")), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1") as cp:
            await cp.wait_online(5)
            await cp.plug_in(1)
            assert await cp.present_card("CARD-0001") == "Accepted"
            await cp.wait_for(lambda: any(s.action == "MeterValues" for s in cp.sent), 5, "a meter value")
            await cp.stop_transaction(1)
            await cp.drained(5)
            await cp.send("Authorize", {"idTag": "UNKNOWN"})
            await cp.send("DataTransfer", {"vendorId": "com.example", "messageId": "x", "data": "{}"})
            await cp.send("DiagnosticsStatusNotification", {"status": "Uploaded"})
            await cp.send("FirmwareStatusNotification", {"status": "Installed"})
            checked = set()
            for sent in cp.sent:
                assert sent.error is None, (sent.action, sent.error)
                assert sent.reply is not None
                assert schema_errors(sent.action, sent.reply, response=True) == []
                checked.add(sent.action)
            assert {"BootNotification", "StatusNotification", "Authorize", "StartTransaction", "MeterValues",
                    "StopTransaction", "DataTransfer", "DiagnosticsStatusNotification",
                    "FirmwareStatusNotification"} <= checked
            # the calls the central system made are valid requests too
            for received in cp.received:
                assert schema_errors(received.action, received.payload) == []
            audit = await h.store.list_audit(station="ST-1")
            assert {"DiagnosticsStatusNotification", "FirmwareStatusNotification"} <= {a.action for a in audit}

    run(scenario())


def test_a_charger_offering_only_another_ocpp_version_is_refused_with_400(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h:
            with pytest.raises(InvalidStatus) as caught:
                async with connect(f"{h.url}/ST-1", subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
                    pass
            assert caught.value.response.status_code == 400

    run(scenario())


def test_health_endpoint_answers_without_a_websocket(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h:
            url = f"http://127.0.0.1:{h.central.port}/healthz"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
            assert body == b"ok\n"

    run(scenario())


def test_security_profile_2_is_basic_auth_over_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    desired = desired_of(owner(), station("st-1", securityProfile=2,
                                          credentials={"authorizationKey": {"env": "K"}}))
    settings = ServerSettings(port=0, tls_cert=cert, tls_key=key, call_timeout=3)
    ctx = ssl.create_default_context(cafile=str(cert))

    async def scenario() -> None:
        async with csms(tmp_path, desired, env={"K": KEY}, settings=settings) as h:
            url = f"wss://127.0.0.1:{h.central.port}/ocpp/ST-1"
            auth = {"Authorization": "Basic " + base64.b64encode(f"ST-1:{KEY}".encode()).decode()}
            async with connect(url, subprotocols=["ocpp1.6"], ssl=ctx,  # type: ignore[list-item]
                               additional_headers=auth) as ws:
                await ws.send(json.dumps([2, "b1", "BootNotification",
                                          {"chargePointVendor": "V", "chargePointModel": "M"}]))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg[0] == 3 and msg[1] == "b1":
                        break
                assert msg[2]["status"] == "Accepted"
                # A frame far larger than the 16 KiB TLS receive buffer arrives whole (read in passes).
                big = "x" * 60_000  # (under the 64 KiB websocket frame limit)
                await ws.send(json.dumps([2, "d1", "DataTransfer", {"vendorId": "V", "data": big}]))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg[1] == "d1":
                        break
                assert msg[0] == 3, msg  # parsed whole and answered (a cut frame gets a CALLERROR)
            assert sslproto.SSLProtocol.max_size == 16 * 1024  # what made the connection cost ~45 KiB, not ~290
            rec = await h.store.get_station("ST-1")
            assert rec is not None and rec.security_profile == 2
            with pytest.raises(InvalidStatus) as caught:
                async with connect(url, subprotocols=["ocpp1.6"], ssl=ctx):  # type: ignore[list-item]
                    pass
            assert caught.value.response.status_code == 401

    run(scenario())
