"""Controller state entries: JSON values by key, per owner, surviving a reopen."""

from __future__ import annotations

from pathlib import Path

from controller.store.sqlite import SqliteStore

from .helpers import async_test


@async_test
async def test_state_entries_are_put_read_by_prefix_replaced_deleted_and_kept_per_owner(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db", owner="a")
    try:
        await store.put_state("rollout/current", {"revision": "abc", "wave": 1})
        await store.put_state("confirm/abc", True)
        await store.put_state("rollout/current", {"revision": "abc", "wave": 2})
        assert await store.get_state("rollout/") == {"rollout/current": {"revision": "abc", "wave": 2}}
        assert await store.for_owner("b").get_state() == {}
        await store.delete_state("confirm/abc")
        assert set(await store.get_state()) == {"rollout/current"}
    finally:
        await store.close()
    again = await SqliteStore.open(tmp_path / "s.db", owner="a")
    try:
        assert await again.get_state("rollout/") == {"rollout/current": {"revision": "abc", "wave": 2}}
    finally:
        await again.close()
