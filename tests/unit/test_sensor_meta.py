"""The sensor meta contract (vigil/buffer/meta.py) against the Lua script that writes most of it."""

import re

from vigil.alerts import AlertState
from vigil.buffer import meta as sensor_meta
from vigil.buffer.scripts import APPLY


def _hash_fields(script: str) -> set[str]:
    """Every quoted field name in the script's HMGET/HSET calls on the meta hash."""
    calls = re.findall(r"redis\.call\('H(?:MGET|SET)', meta, ([^\n]*)", script)
    assert calls, "no HMGET/HSET on the meta hash found: has the script changed shape?"
    # The fields a call changed are gathered in the table `set` and written in one HSET.
    calls += re.findall(r"\bset(?:\[#set \+ 1\])? = ([^\n]*)", script)
    names = {name for call in calls for name in re.findall(r"'([a-z_]+)'", call)}
    # Per-partition fields are built as prefix .. partition in local variables.
    names |= set(re.findall(r"'([a-z]+:)' \.\. part", script))
    return names


def test_the_apply_script_reads_and_writes_only_contract_fields():
    used = _hash_fields(APPLY)
    assert used == set(sensor_meta.WRITTEN_BY_APPLY) | set(sensor_meta.READ_BY_APPLY) | set(sensor_meta.PREFIXES)


def test_alert_state_round_trips_through_the_contract_fields():
    state = AlertState("abc", 5, 2, 3, 4)
    meta = state.to_meta()
    assert tuple(meta) == sensor_meta.ALERT_FIELDS
    assert AlertState.from_meta(meta) == state
    assert AlertState.from_meta({}) == AlertState()


def test_applied_offsets_parse_only_offset_fields():
    meta = {"o:3": "41", "o:0": "7", "old:3": "12,13", "newest": "5"}
    assert sensor_meta.applied_offsets(meta) == {3: 41, 0: 7}
