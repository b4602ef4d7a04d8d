"""Tariff history documents: a tariff survives the round trip, unchanged tariffs keep their address, and a
recorded revision resolves back to tariffs, group inclusion, station assignments and owner terms."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from controller.billing import history
from controller.billing.history import (
    in_force_at,
    record_revision,
    resolve,
    snapshot,
    tariff_document,
    tariff_from_document,
)
from controller.store.billing_records import TariffRevision
from controller.store.sqlite import SqliteStore
from tests.config.ownerrepo import card, desired, evse, group, owner, station, tariff
from tests.store.helpers import open_store

WINDOWED = tariff("standard", price={"sessionFee": "1.00", "perKwh": "0.30",
                                     "idle": {"perHour": "6", "graceMinutes": 10, "untilUnplug": True}},
                  windows=[{"name": "night", "days": ["mon", "sun"], "start": "22:00", "end": "06:00",
                            "price": {"perKwh": "0.20"}}],
                  groupPrices=[{"group": "staff", "free": True}], minPrice="0.50", maxPrice="40", taxRatePercent="9")


@pytest.fixture(autouse=True)
def _nothing_resolved_yet() -> None:
    """Resolved prices are kept per process by manifest: each test here starts without any."""
    history._RESOLVED.clear()
    history._LOADING.clear()


def _repo(per_kwh: str = "0.40"):  # type: ignore[no-untyped-def]
    return desired(owner(), group("employees", card("EMP-1", "drv-1")), group("staff", includes=["employees"]),
                   WINDOWED, tariff("fast", price={"perKwh": per_kwh}),
                   station("st-1", tariff="standard", evses=[evse(1), evse(2, tariff="fast")]))


def test_a_tariff_reads_back_equal_from_its_document() -> None:
    t = _repo().tariffs["standard"]
    back = tariff_from_document(json.loads(json.dumps(tariff_document(t))))
    assert back == dataclasses.replace(t, src=back.src)


def test_an_unchanged_tariff_keeps_its_address_and_a_changed_one_gets_a_new_one() -> None:
    a, b = snapshot(_repo()), snapshot(_repo(per_kwh="0.45"))
    ma, mb = json.loads(a.manifest), json.loads(b.manifest)
    assert ma["tariffs"]["standard"] == mb["tariffs"]["standard"]
    assert ma["tariffs"]["fast"] != mb["tariffs"]["fast"]
    assert ma["groups"] == mb["groups"] and ma["owner"] == mb["owner"]
    assert not any("EMP-1" in text for text in a.documents.values())  # no cards: no personal data


def test_a_recorded_revision_resolves_to_what_it_declared() -> None:
    ds = _repo()
    snap = snapshot(ds)
    at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    got = resolve(TariffRevision(ds.revision, at, snap.manifest, snap.documents))
    assert got.tariffs["fast"].price.per_kwh == ds.tariffs["fast"].price.per_kwh
    assert got.tariffs["standard"] == dataclasses.replace(ds.tariffs["standard"], src=got.tariffs["standard"].src)
    prices = got.station("st-1")
    assert prices is not None and (prices.tariff_for(1), prices.tariff_for(2)) == ("standard", "fast")
    assert got.groups_of("employees") == ("employees", "staff") and got.groups_of(None) == ()
    assert got.owner is not None and got.owner.billing == ds.owner.billing and got.owner.timezone == "Europe/Amsterdam"


T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


async def _counting_store(tmp_path: Path, revision: str, *, read_delay: float = 0.0) -> tuple[SqliteStore, list[int]]:
    """A store with `revision` (the `_repo` prices) recorded at T0; the list fills with every revision read in
    full (each read taking `read_delay` seconds more)."""
    store = await open_store(tmp_path)
    assert await record_revision(store, dataclasses.replace(_repo(), revision=revision), T0) is True
    fetched: list[int] = []
    original = store.tariff_revision_by_ref

    async def counted(ref: int):  # type: ignore[no-untyped-def]
        fetched.append(ref)
        await asyncio.sleep(read_delay)
        return await original(ref)

    store.tariff_revision_by_ref = counted  # type: ignore[method-assign]
    return store, fetched


def test_prices_in_force_are_resolved_once_per_revision_and_follow_a_new_one(tmp_path: Path) -> None:
    async def main() -> None:
        (tmp_path / "empty").mkdir()
        empty = await open_store(tmp_path / "empty")
        assert await in_force_at(empty, T0) is None
        await empty.close()
        store, fetched = await _counting_store(tmp_path, "r1")
        first = await in_force_at(store, T0 + dt.timedelta(minutes=5))
        again = await in_force_at(store, T0 + dt.timedelta(minutes=9))
        assert first is not None and again is first and len(fetched) == 1  # read and resolved once
        assert str(first.tariffs["fast"].price.per_kwh) == "0.40"
        later = T0 + dt.timedelta(hours=1)
        assert await record_revision(store, dataclasses.replace(_repo(per_kwh="0.45"), revision="r2"), later)
        newer = await in_force_at(store, later + dt.timedelta(minutes=1))
        assert newer is not None and str(newer.tariffs["fast"].price.per_kwh) == "0.45" and len(fetched) == 2
        assert await in_force_at(store, T0 + dt.timedelta(minutes=10)) is first  # the old one still cached
        await store.close()

    asyncio.run(main())


def test_concurrent_askers_wait_for_one_read_of_a_revision(tmp_path: Path) -> None:
    """The first stops after a revision arrive together: one read and resolve, not one per stop."""
    async def main() -> None:
        store, fetched = await _counting_store(tmp_path, "r-concurrent", read_delay=0.05)  # the others ask meanwhile
        got = await asyncio.gather(*(in_force_at(store, T0 + dt.timedelta(minutes=i)) for i in range(6)))
        assert len(fetched) == 1 and got[0] is not None and all(g is got[0] for g in got)
        await store.close()

    asyncio.run(main())


def test_an_asker_cancelled_does_not_cancel_the_load_for_the_others(tmp_path: Path) -> None:
    async def main() -> None:
        store, fetched = await _counting_store(tmp_path, "r-cancel", read_delay=0.05)
        first = asyncio.ensure_future(in_force_at(store, T0))
        second = asyncio.ensure_future(in_force_at(store, T0))
        await asyncio.sleep(0.01)
        first.cancel()
        got = await second
        assert got is not None and got.revision == "r-cancel" and first.cancelled() and len(fetched) == 1
        await store.close()

    asyncio.run(main())


def test_a_revision_that_changed_no_price_shares_the_prices_resolved_for_the_one_before(tmp_path: Path) -> None:
    """Most revisions change a profile, a card or a setting, not a price: the same manifest is not read and
    resolved again (a fleet-wide change of 10,000 stations would pay ~0.2 s for it), but each keeps its own
    revision and time taken."""
    async def main() -> None:
        store, fetched = await _counting_store(tmp_path, "r-a")
        first = await in_force_at(store, T0)
        t1 = T0 + dt.timedelta(hours=1)
        assert await record_revision(store, dataclasses.replace(_repo(), revision="r-b"), t1) is True
        second = await in_force_at(store, t1)
        assert first is not None and second is not None and len(fetched) == 1
        assert (first.revision, first.taken_at, second.revision, second.taken_at) == ("r-a", T0, "r-b", t1)
        assert second.tariffs == first.tariffs and second.stations == first.stations
        assert await in_force_at(store, T0 + dt.timedelta(minutes=1)) is first
        await store.close()

    asyncio.run(main())
