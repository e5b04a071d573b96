import json

import pytest
from hypothesis import given, settings, strategies as st

from vigil.events.decode import EventDecoder
from vigil.events.schema import EventError, EventSchema

SCHEMA = EventSchema(["feature_1", "feature_2"])
DECODER = EventDecoder(SCHEMA, max_bytes=512)

VALID = [
    {"sensor_id": "s-1", "timestamp": 1767225600000, "feature_1": 1.5, "feature_2": -2, "10_days_alert_label": 0},
    {"sensor_id": " s-2 ", "timestamp": 1767225600000, "feature_1": 0.0, "feature_2": 3.25},
    {"sensor_id": "s-3", "timestamp": "2026-01-01T00:00:00Z", "feature_1": 1, "feature_2": 2},  # ISO: slow path
    {"sensor_id": "s-\n\u0000", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2},  # opaque id
    {"sensor_id": "s-4", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2, "10_days_alert_label": None},
    {"sensor_id": "s-5", "timestamp": 1767225600000, "feature_1": 3e38, "feature_2": 2, "extra": "ignored"},
]

INVALID = [
    (b"not json at all", "not_json"),
    (b"[1, 2]", "not_object"),
    (b'{"timestamp": 1767225600000, "feature_1": 1, "feature_2": 2}', "missing_field"),
    (b'{"sensor_id": "s", "feature_1": 1, "feature_2": 2}', "missing_field"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1}', "missing_field"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": NaN, "feature_2": 2}', "not_finite"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": "1.5", "feature_2": 2}', "not_numeric"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": true, "feature_2": 2}', "not_numeric"),
    (b'{"sensor_id": "s", "timestamp": "yesterday", "feature_1": 1, "feature_2": 2}', "bad_timestamp"),
    (b'{"sensor_id": "s", "timestamp": 1767225600, "feature_1": 1, "feature_2": 2}', "bad_timestamp"),
    (b'{"sensor_id": "", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2}', "bad_sensor_id"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2, "10_days_alert_label": 2}', "bad_label"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1e999, "feature_2": 2}', "not_finite"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": ' + b"9" * 400 + b', "feature_2": 2}', "not_finite"),
    (b"\xff\xfe\x00garbage", "not_json"),
    (b'{"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1e39, "feature_2": 2}', "not_finite"),
    (b'{"sensor_id": "a\\ud800b", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2}', "bad_sensor_id"),
    (b'{"sensor_id": 42, "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2}', "bad_sensor_id"),
    (b'{"sensor_id": "  ", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2}', "bad_sensor_id"),
    (b"", "empty"),
    (None, "empty"),
    (b'{"sensor_id": "s", "pad": "' + b"x" * 600 + b'"}', "oversized"),
]


@pytest.mark.parametrize("event", VALID)
def test_decoder_accepts_what_the_schema_accepts_with_the_same_result(event):
    raw = json.dumps(event).encode()
    assert DECODER.decode(raw) == SCHEMA.parse_json(raw)


@pytest.mark.parametrize("raw, reason", INVALID)
def test_decoder_rejects_with_the_schema_reason(raw, reason):
    with pytest.raises(EventError) as caught:
        DECODER.decode(raw)
    assert caught.value.reason == reason
    if reason not in ("empty", "oversized"):  # the schema never sees those (transport limits)
        with pytest.raises(EventError) as full:
            SCHEMA.parse_json(raw)
        assert full.value.reason == reason


def _declined_to_pydantic(monkeypatch) -> list:
    """The rows the fast checks hand to the full validator, which now refuses them all."""
    declined = []

    def refuse(raw):
        declined.append(raw)
        raise EventError("invalid", "declined by the fast checks")

    monkeypatch.setattr(DECODER, "_full", refuse)
    return declined


def test_fast_path_takes_the_common_case_without_pydantic(monkeypatch):
    declined = _declined_to_pydantic(monkeypatch)
    raws = [json.dumps(VALID[0]).encode(), json.dumps(VALID[2]).encode(), json.dumps(VALID[1]).encode()]
    got = DECODER.decode_many(raws)
    assert got.rows == [0, 2] and got.values == [(1.5, -2.0), (0.0, 3.25)] and got.labels == [0, None]
    assert got.sensor_ids == ["s-1", " s-2 "] and got.timestamps == [1767225600000] * 2
    assert declined == [raws[1]] and list(got.errors) == [1]  # ISO text → the full validator


def test_fast_path_never_accepts_what_pydantic_rejects(monkeypatch):
    # Boundary values on each rule: the fast path may decline but must not accept invalid data.
    edge = [
        {"sensor_id": "s", "timestamp": 631152000000 - 1, "feature_1": 1, "feature_2": 2},
        {"sensor_id": "s", "timestamp": 4102444800000, "feature_1": 1, "feature_2": 2},
        {"sensor_id": "s" * 257, "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2},
        {"sensor_id": "   ", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2},
        {"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2, "10_days_alert_label": True},
        {"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 1, "feature_2": 2, "10_days_alert_label": 0.5},
        {"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 3.4028234663852886e38 * 1.0000001, "feature_2": 2},
    ]
    raws = [json.dumps(data).encode() for data in edge]
    full = []
    for raw in raws:
        try:
            full.append(SCHEMA.parse_json(raw))
        except EventError:
            full.append(None)
    declined = _declined_to_pydantic(monkeypatch)
    got = DECODER.decode_many(raws)
    for i, event in zip(got.rows, zip(got.sensor_ids, got.timestamps, got.values, got.labels)):
        assert full[i] == event, edge[i]
    assert all(raws[i] in declined for i, event in enumerate(full) if event is None)
    assert len(declined) == len(edge)  # each of these is a boundary the fast checks leave alone


# The transport's size limit is the decoder's alone (the schema never sees it): the property
# tests below compare verdicts on values of any size.
UNLIMITED = EventDecoder(SCHEMA, max_bytes=1 << 20)


def _verdict(decode, raw):
    try:
        return decode(raw)
    except EventError as exc:
        return exc.reason


@settings(deadline=None)  # a loaded CI machine must not fail it on time
@given(st.integers(min_value=-(2**140), max_value=2**140))
def test_an_integer_feature_gets_the_float_the_full_validator_gives_it(value):
    # Beyond 2**53 an integer has no exact float: the fast path must round it as float() does, and
    # beyond float32 range refuse it as the full validator does.
    raw = json.dumps({"sensor_id": "s", "timestamp": 1767225600000, "feature_1": value, "feature_2": 2}).encode()
    assert _verdict(UNLIMITED.decode, raw) == _verdict(SCHEMA.parse_json, raw)


FIELD_VALUES = {
    "sensor_id": st.one_of(st.text(max_size=300), st.sampled_from([" ", "\u2003", "a\ud800", "s-1"]), st.integers()),
    "timestamp": st.one_of(st.integers(min_value=631152000000 - 2, max_value=4102444800000 + 2),
                           st.floats(), st.sampled_from(["2026-01-01T00:00:00Z", "2026-02-30T00:00:00Z", True])),
    "feature_1": st.one_of(st.floats(), st.integers(), st.booleans(), st.none(), st.text(max_size=3)),
    "feature_2": st.floats(min_value=-1e40, max_value=1e40),
    "10_days_alert_label": st.sampled_from([0, 1, 2, -1, None, True, False, 0.0, 1.0, 0.5, "1", float("nan")]),
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_the_decoder_gives_the_full_validators_verdict_on_any_event(data):
    # Whatever the fast path takes, declines or refuses, a value ends as the full validator says:
    # the same event, or the same reason.
    raw = json.dumps(data).encode()
    assert _verdict(UNLIMITED.decode, raw) == _verdict(SCHEMA.parse_json, raw)
    got = UNLIMITED.decode_many([raw, raw])  # the batch's path (two rows) agrees with one row's
    assert got.rows == ([0, 1] if not got.errors else [])


def test_huge_integer_feature_is_not_finite_not_a_crash():
    raw = json.dumps({"sensor_id": "s", "timestamp": 1767225600000, "feature_1": 10**400, "feature_2": 2}).encode()
    with pytest.raises(EventError) as caught:
        DECODER.decode(raw)
    assert caught.value.reason == "not_finite"


def test_deep_nesting_is_not_json_not_a_crash():
    raw = b"[" * 5000 + b"]" * 5000
    with pytest.raises(EventError) as caught:
        EventDecoder(SCHEMA, max_bytes=100_000).decode(raw)
    assert caught.value.reason == "not_json"
