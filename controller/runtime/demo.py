"""`chargeops demo`: the controller on an owner repository with a simulated charger for every station.

What the quick start runs: it validates the repository, gives every station a fresh AuthorizationKey
(in this process's environment, where its secret reference points), starts the central system on a
local port with a throw-away database, connects one simulated charger per station, lets simulated
drivers present the owner's cards, and prints what happened: registrations, Authorize answers and the
sessions recorded in the store. Nothing here is a shortcut: the chargers speak OCPP over websockets to
the same server `chargeops run` starts.

Boundary: orchestration for people trying chargeops; no logic the controller depends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import tempfile
from pathlib import Path
from typing import TextIO

from controller.config.access import card_status
from controller.config.diagnostics import mask_id_tag
from controller.config.loader import validate_paths
from controller.hw.server import ServerSettings
from controller.hw.sim.fleet import Fleet
from controller.runtime.controller import Controller, ControllerSettings


async def demo(repo: Path, out: TextIO, *, duration: float = 15.0, sessions: int = 6, seed: int = 7,
               db: Path | None = None) -> int:
    result = await asyncio.to_thread(validate_paths, [repo])
    if result.desired is None:
        for d in result.errors:
            out.write(f"{d.location()}: {d.message}\n")
        return 1
    desired = result.desired
    passwords: dict[str, str] = {}
    for st in desired.stations.values():
        if st.authorization_key is not None and st.authorization_key.env:
            key = secrets.token_hex(16)
            os.environ[st.authorization_key.env] = key
            passwords[st.identity] = key
    with tempfile.TemporaryDirectory(prefix="chargeops-demo-") as tmp:
        settings = ControllerSettings(repo=repo, db_path=db or Path(tmp) / "demo.db",
                                      server=ServerSettings(port=0, call_timeout=5.0))
        ctl = Controller(settings)
        await ctl.start()
        try:
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            out.write(f"chargeops demo: owner {desired.owner.display_name!r}, revision {desired.revision}\n")
            out.write(f"central system on {url}/<identity>; {len(desired.stations)} simulated chargers\n\n")
            identities = sorted(st.identity for st in desired.stations.values())
            fleet = Fleet.build(url, identities=identities, passwords=passwords, time_scale=0.05,
                                reconnect_delay=0.2)
            async with fleet:
                await _drive(ctl, fleet, desired, out, duration, sessions, random.Random(seed))
        finally:
            await ctl.stop()
    return 0


async def _drive(ctl: Controller, fleet: Fleet, desired: object, out: TextIO, duration: float, sessions: int,
                 rnd: random.Random) -> None:
    from controller.config.model import DesiredState

    assert isinstance(desired, DesiredState)
    store = ctl.store
    assert store is not None
    for cp in fleet:
        st = desired.station_for_identity(cp.identity)
        state = "activated" if st and st.activated else "NOT activated (kept inoperative)"
        out.write(f"  {cp.identity:<24} {('online' if cp.online else 'offline'):<8} registration "
                  f"{cp.registration or '-':<9} {state}\n")
    import datetime as dt

    today = dt.date.today()
    cards = [c for c in desired.cards.values() if card_status(c, today) == "Accepted"]
    out.write(f"\n{len(cards)} valid cards; drivers start {sessions} sessions:\n")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    started = 0
    for _ in range(sessions * 4):
        if started >= sessions or loop.time() > deadline:
            break
        cp = rnd.choice([c for c in fleet if c.online])
        card = rnd.choice(cards)
        connector = rnd.choice([i for i in cp.connectors if i > 0])
        await cp.plug_in(connector)
        answer = await cp.present_card(card.id_tag, connector)
        out.write(f"  {cp.identity:<24} EVSE {connector} card {mask_id_tag(card.id_tag)} ({card.group}): {answer}\n")
        if answer == "Accepted":
            started += 1
            await asyncio.sleep(0.3)
            await cp.stop_transaction(connector)
        await cp.unplug(connector)
    with contextlib.suppress(TimeoutError):
        await asyncio.gather(*(cp.drained(5) for cp in fleet))
    txs = await store.list_transactions()
    out.write(f"\nsessions recorded in the store: {len(txs)}\n")
    for tx in txs:
        energy = (tx.meter_stop - tx.meter_start) if tx.meter_stop is not None and tx.meter_start is not None else None
        out.write(f"  #{tx.id} {tx.station} EVSE {tx.connector_id} card {mask_id_tag(tx.id_tag or '')} "
                  f"{tx.status.value} energy {energy if energy is not None else '?'} Wh\n")
    audit = await store.list_audit(limit=20)
    if audit:
        out.write(f"\nchanges sent to chargers (audit, last {len(audit)}):\n")
        for a in audit:
            out.write(f"  {a.station} {a.action} {dict(a.detail)}\n")
