"""Boot and connection handling of the central system, with real websockets and simulated chargers:
activated / not activated / removed / unknown / wrong key / no subprotocol / duplicate connection /
reconnect without boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.hw.sim.model import ChargerModel, Faults
from tests.config.ownerrepo import owner, station

from .harness import csms, desired_of, run, wait_until

KEY = "00112233445566778899aabbccddeeff"


def test_an_activated_station_is_accepted_with_its_declared_heartbeat_interval(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1", ocppConfiguration={"HeartbeatInterval": 120}))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1") as cp:
            await cp.wait_online(5)
            boot = [s for s in cp.sent if s.action == "BootNotification"][-1]
            assert boot.reply is not None
            assert boot.reply["status"] == "Accepted" and boot.reply["interval"] == 120
            rec = await h.store.get_station("ST-1")
            assert rec is not None and rec.registration_status == "Accepted" and rec.online
            assert rec.boot is not None and rec.boot.vendor == cp.boot_payload()["chargePointVendor"]
            # the connect triggered re-observation: statuses asked for, configuration read and stored
            await wait_until(lambda: cp.calls("GetConfiguration") and cp.calls("TriggerMessage"), 5, "observation")
            await wait_until(lambda: _config_recorded(h, "ST-1"), 5, "configuration stored")

    run(scenario())


async def _config_recorded(h, identity: str) -> bool:  # type: ignore[no-untyped-def]
    rec = await h.store.get_station(identity)
    return rec is not None and len(rec.configuration) > 5


def test_a_station_that_is_not_activated_is_accepted_but_kept_inoperative_with_offline_auth_off(
        tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1", activation={"plan": "standard", "activated": False}))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1") as cp:
            await cp.wait_online(5)
            assert cp.registration == "Accepted"
            await wait_until(lambda: cp.calls("ChangeAvailability"), 5, "ChangeAvailability")
            ca = cp.calls("ChangeAvailability")[0].payload
            assert ca == {"connectorId": 0, "type": "Inoperative"}
            await wait_until(lambda: all(c.status() == "Unavailable" for c in cp.connectors.values()), 5,
                             "connectors unavailable")
            changed = {c.payload["key"]: c.payload["value"] for c in cp.calls("ChangeConfiguration")}
            assert changed.get("LocalAuthorizeOffline", "false") == "false"
            assert cp.config.get("LocalAuthorizeOffline") in ("false", None)
            # nobody may charge at a station that is not activated
            reply = await cp.send("Authorize", {"idTag": "ANY"})
            assert reply["idTagInfo"]["status"] == "Invalid"

    run(scenario())


def test_a_station_removed_from_the_repository_still_connects_and_is_made_inoperative(tmp_path: Path) -> None:
    with_it = desired_of(owner(), station("st-1"), station("st-2"))
    without = desired_of(owner(), station("st-2"))

    async def scenario() -> None:
        async with csms(tmp_path, with_it) as h:
            async with h.charger("ST-1") as cp:
                await cp.wait_online(5)
            assert h.holder.offer(without, without.revision)
            h.reconciler.on_revision()
            assert h.reconciler.held is not None  # removing half the fleet is held until confirmed
            assert h.reconciler.held.stations == ("ST-1",)
            assert await h.reconciler.confirm(without.revision)
            assert h.reconciler.held is None
            # a new process that never saw st-1 in git still knows it from the store
            h.holder.known_identities.clear()
            async with h.charger("ST-1") as cp:
                await cp.wait_online(5)
                await wait_until(lambda: cp.calls("ChangeAvailability"), 5, "made inoperative")
                assert cp.calls("ChangeAvailability")[0].payload["type"] == "Inoperative"

    run(scenario())


def test_a_never_declared_identity_gets_404_at_the_handshake(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("INTRUDER") as cp:
            await cp.wait_for(lambda: cp.last_error is not None, 5, "refused")
            assert "404" in str(cp.last_error) and not cp.online
            assert await h.store.get_station("INTRUDER") is None

    run(scenario())


def test_http_basic_auth_with_the_right_key_confirms_profile_1_and_wrong_keys_are_refused(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1", securityProfile=1,
                                          credentials={"authorizationKey": {"env": "KEY_ST1"}}),
                         station("st-2", securityProfile=1, credentials={"authorizationKey": {"env": "KEY_ST2"}}))
    env = {"KEY_ST1": KEY, "KEY_ST2": "ffeeddccbbaa99887766554433221100"}

    async def scenario() -> None:
        async with csms(tmp_path, desired, env=env) as h:
            async with h.charger("ST-1", KEY) as good:
                await good.wait_online(5)
            rec = await h.store.get_station("ST-1")
            assert rec is not None and rec.security_profile == 1
            # raw key bytes instead of hex text are accepted too
            raw = ChargerModel(basic_auth_raw_key=True)
            async with h.charger("ST-1", KEY, model=raw) as good_raw:
                await good_raw.wait_online(5)
            # a wrong key, another station's key, and no credentials once profile 1 is confirmed: refused
            for password in ("wrong-password-000", env["KEY_ST2"], None):
                async with h.charger("ST-1", password) as bad:
                    await bad.wait_for(lambda b=bad: b.last_error is not None, 5, "refused")  # type: ignore[misc]
                    assert "401" in str(bad.last_error) and not bad.online

    run(scenario())


def test_a_station_trying_another_stations_identity_is_refused(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1", credentials={"authorizationKey": {"env": "K1"}}),
                         station("st-2", credentials={"authorizationKey": {"env": "K2"}}))
    env = {"K1": KEY, "K2": "ffeeddccbbaa99887766554433221100"}

    async def scenario() -> None:
        async with csms(tmp_path, desired, env=env) as h, h.charger("ST-1", env["K2"]) as cp:
            await cp.wait_for(lambda: cp.last_error is not None, 5, "refused")
            assert "401" in str(cp.last_error)

    run(scenario())


def test_old_firmware_offering_no_subprotocol_is_served_as_ocpp16(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1", faults=Faults(no_subprotocol=True)) as cp:
            await cp.wait_online(5)
            assert cp.registration == "Accepted"

    run(scenario())


def test_the_newest_connection_of_an_identity_wins(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1") as cp:
            await cp.wait_online(5)
            first = h.central.connections["ST-1"].conn
            await cp.open_second_connection()
            await wait_until(lambda: h.central.connections["ST-1"].conn is not first, 5, "replaced")
            await wait_until(lambda: first.closed, 5, "old closed")
            reply = await cp.send("Heartbeat", {})
            assert "currentTime" in reply
            assert h.central.online() == ["ST-1"]

    run(scenario())


def test_a_reconnect_without_boot_keeps_the_registration_and_re_observes(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1") as cp:
            await cp.wait_online(5)
            await wait_until(lambda: len(cp.calls("GetConfiguration")) >= 1, 5, "first observation")
            reads = len(cp.calls("GetConfiguration"))
            await cp.reconnect()
            await wait_until(lambda: cp.connect_count == 2 and cp.online, 5, "reconnected")
            await wait_until(lambda: len(cp.calls("GetConfiguration")) > reads, 5, "re-observed")
            assert cp.boot_count == 1
            rec = await h.store.get_station("ST-1")
            assert rec is not None and rec.registration_status == "Accepted" and rec.online

    run(scenario())


@pytest.mark.parametrize("path", ["/ocpp/ST-1", "/ST-1", "/ocpp/ST-1/", "/a/b/ST-1?x=1"])
def test_the_identity_is_the_last_path_segment_whatever_the_prefix(tmp_path: Path, path: str) -> None:
    from websockets.asyncio.client import connect

    desired = desired_of(owner(), station("st-1"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h:
            url = f"ws://127.0.0.1:{h.central.port}{path}"
            async with connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                await ws.send('[2,"hb-1","Heartbeat",{}]')
                while True:  # the central system may ask its own questions first (re-observation)
                    reply = str(await ws.recv())
                    if reply.startswith('[3,"hb-1"'):
                        break
                assert '"currentTime"' in reply
            assert await h.store.get_station("ST-1") is not None

    run(scenario())


def test_a_declared_security_profile_is_reached_step_by_step(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1", securityProfile=1,
                                          credentials={"authorizationKey": {"env": "KEY_ST1"}}))

    async def scenario() -> None:
        async with csms(tmp_path, desired, env={"KEY_ST1": KEY}) as h, h.charger("ST-1") as cp:
            await cp.wait_online(5)  # a fresh charger: no key yet, profile 0 is served
            await wait_until(lambda: [c for c in cp.calls("ChangeConfiguration")
                                      if c.payload["key"] == "SecurityProfile"], 5, "SecurityProfile sent")
            keys = [c.payload["key"] for c in cp.calls("ChangeConfiguration")]
            assert keys.index("AuthorizationKey") < keys.index("SecurityProfile")
            await wait_until(lambda: _confirmed(h, "ST-1", 1), 10, "profile 1 confirmed")
            assert cp.online
            audit = await h.store.list_audit(station="ST-1")
            assert KEY not in str([a.detail for a in audit])  # the key is never written in the audit
            # from now on a connection without the key is refused
            async with h.charger("ST-1") as intruder:
                await intruder.wait_for(lambda: intruder.last_error is not None, 5, "refused")
                assert "401" in str(intruder.last_error)

    run(scenario(), timeout=30)


async def _confirmed(h, identity: str, profile: int) -> bool:  # type: ignore[no-untyped-def]
    rec = await h.store.get_station(identity)
    return rec is not None and rec.security_profile == profile and rec.credentials.pending_key is None


def _connected_while_the_loop_is_blocked(port: int, n: int, wait: float) -> int:
    """Start `n` TCP connects and count those the kernel completed within `wait` s, with the server's event
    loop blocked (this runs on it): only the listen backlog holds them until the server accepts."""
    import select
    import socket
    import time

    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        time.sleep(wait)
        poller = select.poll()
        for s in socks:
            poller.register(s, select.POLLOUT)
        return sum(1 for _, ev in poller.poll(0) if ev & select.POLLOUT and not ev & (select.POLLERR | select.POLLHUP))
    finally:
        for s in socks:
            s.close()


def _somaxconn() -> int:
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return 0


def test_connects_arriving_while_the_controller_is_busy_wait_in_the_listen_backlog(tmp_path: Path) -> None:
    """A reconnect storm: connects the kernel cannot queue are dropped and retried by TCP after 1, 3, 7 ...
    63 s. The controller listens with a backlog of 1,024 (asyncio's default is 100)."""
    from controller.hw.server import ServerSettings

    desired = desired_of(owner(), station("st-1"))

    async def count(backlog: int | None) -> int:
        settings = ServerSettings(port=0) if backlog is None else ServerSettings(port=0, backlog=backlog)
        async with csms(tmp_path / str(backlog), desired, settings=settings) as h:
            return _connected_while_the_loop_is_blocked(h.central.port, 300, 0.5)

    (tmp_path / "None").mkdir()
    (tmp_path / "100").mkdir()
    assert ServerSettings().backlog == 1024
    cap = _somaxconn() or 4096  # the kernel caps every listen backlog at net.core.somaxconn (4,096 since Linux 5.4)
    # every connect waits in the backlog until the loop accepts it (at most the kernel's cap of them)
    assert run(count(None)) >= min(300, cap)
    assert run(count(100)) <= 110  # asyncio's default: the rest were dropped, to be retried after 1 s
