"""The dashboard in a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium): a whole
controller on the town-curbside example with a simulated charger per station; the page shows the fleet in
its table and on its map, follows a charger's fault live (server-sent events, no reload), and the station
page shows masked idTags. Screenshots go to tests/artifacts/ (gitignored).

Not skipped when the browser is missing: it fails and says how to get it (`.ci/run` installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.config.access import card_status
from tests.integration.example_fleet import API_TOKEN, copy_example, running
from tests.integration.harness import run

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the dashboard's browser test needs Debian's chromium and chromium-driver ({', '.join(missing)} "
                    "missing): `.ci/run` installs them; by hand: apt-get install -y chromium chromium-driver",
                    pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is missing: pip install -e '.[dev]' (it is in the dev extras)", pytrace=False)
    profile = tempfile.mkdtemp(prefix="chargeops-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = 10) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        shot = ARTIFACTS / "dashboard-timeout.png"
        driver.save_screenshot(str(shot))
        raise AssertionError(f"the page did not show {what} within {timeout} s (screenshot: {shot})") from None


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


ROW = 'document.querySelector(`#fleet tr[data-identity="${arguments[0]}"]`)'
MARKER = 'document.querySelector(`path.station-marker[data-identity="${arguments[0]}"]`)'


def severe_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_dashboard_shows_the_example_fleet_and_follows_a_charger_fault_live(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name in ("CHARGEOPS_MAP_TILES", "CHARGEOPS_OCPI_PUSH_URL", "CHARGEOPS_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)

    async def scenario(driver: Any) -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", monkeypatch) as fx, \
                fx.fleet() as fleet:
            stations = fx.desired.stations.values()
            identities = sorted(st.identity for st in stations)
            on_map = sorted(st.identity for st in stations if st.coordinates is not None)

            def open_fleet_page(d: Any) -> None:
                d.get(f"{fx.api}/dashboard?token={API_TOKEN}")
                assert d.current_url == f"{fx.api}/dashboard"  # the token left the address bar for a cookie
                wait(d, lambda d: js(d, "return document.body.dataset.ready === 'true'"), "the fleet")
                wait(d, lambda d: js(d, "return document.querySelectorAll('#fleet tbody tr').length")
                     == len(identities), "every station in the table")
                wait(d, lambda d: all(js(d, f"return {ROW}.querySelector('.connectors-cell').textContent", i)
                                      .startswith("1: Available") for i in ("DLF-AC-0002", "DLF-DC-0001")),
                     "live connector statuses")
                rows = js(d, "return [...document.querySelectorAll('#fleet tbody tr')].map(r => r.dataset.identity)")
                assert sorted(rows) == identities
                markers = js(d, "return [...document.querySelectorAll('path.station-marker')]"
                                ".map(p => p.dataset.identity)")
                assert sorted(markers) == on_map
                assert js(d, "return document.getElementById('owner').textContent") == "Gemeente Delft"
                assert js(d, "return document.getElementById('map').classList.contains('no-tiles')")
                js(d, "window.__sameDocument = true")
                d.save_screenshot(str(ARTIFACTS / "dashboard-fleet.png"))

            await asyncio.to_thread(open_fleet_page, driver)

            # a charger faults: the row, its connectors and the map marker change without a reload
            fleet["DLF-AC-0002"].set_faulted(1)

            def sees_the_fault(d: Any) -> None:
                wait(d, lambda d: js(d, f"return {ROW}.classList.contains('faulted')", "DLF-AC-0002"),
                     "the faulted station's row")
                cell = js(d, f"return {ROW}.querySelector('.connectors-cell').textContent", "DLF-AC-0002")
                assert "1: Faulted" in cell, cell
                wait(d, lambda d: js(d, f"return {MARKER}.classList.contains('faulted')", "DLF-AC-0002"),
                     "the faulted station's marker")
                assert js(d, "return window.__sameDocument === true"), "the page was reloaded"
                assert js(d, "return document.getElementById('count-faulted').textContent") == "1"
                js(d, "const s = document.getElementById('filter-text'); s.value = 'DLF-DC';"
                      "s.dispatchEvent(new Event('input'))")
                shown = js(d, "return [...document.querySelectorAll('#fleet tbody tr')].map(r => r.dataset.identity)")
                assert shown and all(i.startswith("DLF-DC") for i in shown)
                js(d, "const s = document.getElementById('filter-text'); s.value = '';"
                      "s.dispatchEvent(new Event('input'))")
                d.save_screenshot(str(ARTIFACTS / "dashboard-faulted.png"))

            await asyncio.to_thread(sees_the_fault, driver)

            # a driver charges at Markt: the station page shows the session with its idTag masked
            cp = fleet["DLF-AC-0001"]
            today = dt.date.today()
            used = None
            for card in sorted(fx.desired.cards.values(), key=lambda c: c.id_tag):
                if card_status(card, today) == "Accepted" and len(card.id_tag) > 4:
                    await cp.plug_in(1)
                    if await cp.present_card(card.id_tag, 1) == "Accepted":
                        used = card.id_tag
                        break
                    await cp.unplug(1)
            assert used is not None, "no card of the example is accepted at DLF-AC-0001"

            def station_page(d: Any) -> None:
                d.get(f"{fx.api}/dashboard/stations/DLF-AC-0001")
                wait(d, lambda d: js(d, "return document.body.dataset.ready === 'true'"), "the station")
                wait(d, lambda d: js(d, "return document.querySelectorAll('#sessions tbody tr').length") >= 1,
                     "the session")
                tag = js(d, "return document.querySelector('#sessions .id-tag').textContent")
                assert tag.endswith(used[-4:]) and set(tag[:-4]) == {"*"}, tag
                assert used not in d.page_source
                assert js(d, "return document.querySelectorAll('#config tbody tr').length") > 0
                assert js(d, "return document.getElementById('plan').textContent")
                assert "Markt" in js(d, "return document.getElementById('title').textContent")
                d.save_screenshot(str(ARTIFACTS / "dashboard-station.png"))

            await asyncio.to_thread(station_page, driver)
            await cp.stop_transaction(1)
            assert await asyncio.to_thread(severe_errors, driver) == []

    with chromium() as driver:
        run(scenario(driver), timeout=55)
