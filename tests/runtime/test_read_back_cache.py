"""The reconciler keeps each station's record in memory after a read-back instead of reading it again: the
merged copy must be exactly what the store would return."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.config.ocpp16_keys import configuration_index
from controller.runtime.apply import merge_read_back
from controller.runtime.observe import ConfigIndexes
from controller.store.records import BootInfo, ConfigKey
from tests.store.helpers import T0, async_test, open_store


@pytest.mark.parametrize("read_back", [
    # a key the charger already reported (the usual read-back) and one it never reported before
    [ConfigKey("heartbeatinterval", "900", False), ConfigKey("MeterValueSampleInterval", "60", False)],
    [ConfigKey("CONNECTIONTIMEOUT", "90", False), ConfigKey("heartbeatInterval", "900", False)],
    # the first and the last key in name order; a new key sorting after every known one
    [ConfigKey("NumberOfConnectors", "3", True), ConfigKey("connectionTimeOut", "30", False)],
    [ConfigKey("HeartbeatInterval", "600", False), ConfigKey("ZoneOffset", "1", False)],
], ids=["new-key", "known-keys", "first-and-last", "new-key-last"])
@async_test
async def test_merged_record_equals_the_store_after_the_same_read_back(tmp_path: Path,
                                                                       read_back: list[ConfigKey]) -> None:
    store = await open_store(tmp_path)
    await store.record_boot("CP1", BootInfo("ACME", "Wallbox 2", "SN1", "1.2.3"), "Accepted", T0)
    await store.record_configuration("CP1", [ConfigKey("HeartbeatInterval", "300", False),
                                             ConfigKey("NumberOfConnectors", "2", True),
                                             ConfigKey("ConnectionTimeOut", "60", False)], T0, complete=True)
    before = await store.get_station("CP1")
    assert before is not None
    later = T0 + timedelta(seconds=42, microseconds=123456)
    await store.record_configuration("CP1", read_back, later, partial=True)  # as the applier records it
    after = await store.get_station("CP1")
    assert after is not None
    merged = merge_read_back(before, read_back)
    assert merged == after
    assert after.configuration_read_at == T0  # a read-back of some keys is not a full read
    assert [merged.config_value(k.key) for k in read_back] == read_back
    assert merged != before  # the merge changed something the test can see
    # the configuration index a look uses: derived from the one before the read-back, equal to indexing anew
    indexes = ConfigIndexes()
    first = indexes.index("CP1", before.configuration)
    assert indexes.index("cp1", before.configuration) is first  # the same tuple: kept, not built again
    indexes.read_back("CP1", before.configuration, merged.configuration, read_back)
    derived = indexes.index("CP1", merged.configuration)
    assert derived == configuration_index(after.configuration) and derived is not first
    assert first == configuration_index(before.configuration)  # the earlier index is not changed in place
    assert indexes.index("CP1", after.configuration) == derived  # another tuple (the store's): indexed anew
    await store.close()
