import json
import math

import pandas as pd
import pytest

from vigil.events import EventError, EventSchema
from vigil.events.files import read_events, write_events

SEED_COLUMNS = ["sensor_id", "timestamp", "feature_1", "feature_2", "10_days_alert_label"]
SCHEMA = EventSchema(["feature_1", "feature_2"])
GOOD = {"sensor_id": "s-1", "timestamp": "2024-03-01T12:00:00Z", "feature_1": 1.5, "feature_2": -2, "10_days_alert_label": 1}


def test_seed_csv_columns_load_as_is(tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text(
        ",".join(SEED_COLUMNS) + "\n"
        "A17,2024-03-01 00:00:00,0.52,13.1,0\n"
        "A17,2024-03-01 00:07:41,0.49,13.4,0\n"
        "B02,2024-03-01 00:03:12,1.20,9.8,1\n"
    )
    frame = read_events(path)
    assert list(frame.columns) == SEED_COLUMNS
    events = [SCHEMA.parse(row) for row in frame.to_dict("records")]
    assert [e.sensor_id for e in events] == ["A17", "A17", "B02"]
    assert events[1].timestamp_ms - events[0].timestamp_ms == (7 * 60 + 41) * 1000
    assert events[2].values == (1.2, 9.8) and events[2].label == 1


def test_semicolon_csv_is_accepted(tmp_path):
    path = tmp_path / "skab_like.csv"
    path.write_text("sensor_id;timestamp;feature_1;feature_2\nx;2020-03-09 10:14:33;0.02;0.04\n")
    event = SCHEMA.parse(read_events(path).iloc[0].to_dict())
    assert event.values == (0.02, 0.04) and event.label is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_event_files_round_trip(tmp_path, suffix):
    frame = pd.DataFrame([GOOD, {**GOOD, "sensor_id": "s-2", "feature_1": 3.25}])
    back = read_events(write_events(frame, tmp_path / f"events{suffix}"))
    assert [SCHEMA.parse(r) for r in back.to_dict("records")] == [SCHEMA.parse(r) for r in frame.to_dict("records")]


def test_unknown_event_file_type_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="unknown event file type '.xlsx'"):
        read_events(tmp_path / "events.xlsx")


def test_iso_and_epoch_millisecond_timestamps_agree():
    iso = SCHEMA.parse({**GOOD, "timestamp": "2024-03-01T12:00:00+00:00"})
    naive = SCHEMA.parse({**GOOD, "timestamp": "2024-03-01 12:00:00"})
    zulu = SCHEMA.parse({**GOOD, "timestamp": "2024-03-01T12:00:00Z"})
    offset = SCHEMA.parse({**GOOD, "timestamp": "2024-03-01T14:00:00+02:00"})
    epoch = SCHEMA.parse({**GOOD, "timestamp": 1709294400000})
    fraction = SCHEMA.parse({**GOOD, "timestamp": "2024-03-01T12:00:00.000Z"})
    assert {e.timestamp_ms for e in (iso, naive, zulu, offset, epoch, fraction)} == {1709294400000}


def test_unknown_fields_are_ignored_and_label_is_optional():
    event = SCHEMA.parse({k: v for k, v in GOOD.items() if k != "10_days_alert_label"} | {"site": "north"})
    assert event.label is None and event.values == (1.5, -2.0)


def test_nan_label_from_a_file_means_unlabelled():
    assert SCHEMA.parse({**GOOD, "10_days_alert_label": math.nan}).label is None


@pytest.mark.parametrize(
    "change, reason, fragment",
    [
        ({"feature_1": math.nan}, "not_finite", "feature_1: must be a finite number, got nan"),
        ({"feature_2": math.inf}, "not_finite", "feature_2: must be a finite number, got inf"),
        ({"feature_1": "12.5"}, "not_numeric", "feature_1: must be a number, got str"),
        ({"feature_1": None}, "not_numeric", "feature_1: must be a number, got NoneType"),
        ({"feature_2": True}, "not_numeric", "feature_2: must be a number, got bool"),
        ({"feature_2": [1]}, "not_numeric", "got list"),
        ({"timestamp": "yesterday"}, "bad_timestamp", 'timestamp: "yesterday" is not ISO-8601'),
        ({"timestamp": "9999-12-31T23:59:59Z"}, "bad_timestamp",
         'timestamp: "9999-12-31T23:59:59Z" is not ISO-8601 (YYYY-MM-DDThh:mm[:ss[.ffffff]][Z|±hh:mm]) in the years 1990 to 2099'),
        ({"timestamp": "2024-02-30T00:00:00Z"}, "bad_timestamp", '"2024-02-30T00:00:00Z" is not ISO-8601'),
        ({"timestamp": "1709294400"}, "bad_timestamp", '"1709294400" is a number in text'),
        ({"timestamp": 1709294400}, "bad_timestamp", "timestamp: 1709294400 is not epoch milliseconds"),
        ({"timestamp": 1709294400000000}, "bad_timestamp", "epoch seconds or microseconds?"),
        ({"timestamp": None}, "bad_timestamp", "got NoneType"),
        ({"sensor_id": ""}, "bad_sensor_id", "sensor_id must be 1 to 256 characters"),
        ({"sensor_id": "x" * 300}, "bad_sensor_id", "1 to 256 characters"),
        ({"sensor_id": {"id": 1}}, "bad_sensor_id", "must be a JSON string, got dict"),
        ({"sensor_id": 42}, "bad_sensor_id", "sensor_id must be a JSON string, got int 42"),
        ({"sensor_id": "   "}, "bad_sensor_id", 'sensor_id "   " has no visible character'),
        ({"sensor_id": "a\ud800"}, "bad_sensor_id", "lone surrogate"),
        ({"10_days_alert_label": 2}, "bad_label", "10_days_alert_label: label must be 0 or 1, got 2"),
        ({"10_days_alert_label": "yes"}, "bad_label", 'got "yes"'),
    ],
)
def test_bad_values_are_rejected_with_a_precise_reason(change, reason, fragment):
    with pytest.raises(EventError) as info:
        SCHEMA.parse({**GOOD, **change})
    assert info.value.reason == reason
    assert fragment in str(info.value)


@pytest.mark.parametrize("missing", ["sensor_id", "timestamp", "feature_1", "feature_2"])
def test_missing_fields_are_named(missing):
    with pytest.raises(EventError) as info:
        SCHEMA.parse({k: v for k, v in GOOD.items() if k != missing})
    assert info.value.reason == "missing_field"
    assert str(info.value) == f"missing_field: {missing}: field is missing"


@pytest.mark.parametrize(
    "raw, reason",
    [(b"not json", "not_json"), (b"\xff\xfe", "not_json"), (b"[1, 2]", "not_object"), (b'"text"', "not_object")],
)
def test_kafka_values_that_are_not_json_objects(raw, reason):
    with pytest.raises(EventError) as info:
        SCHEMA.parse_json(raw)
    assert info.value.reason == reason


def test_json_values_parse_and_to_record_round_trips():
    event = SCHEMA.parse_json(json.dumps(GOOD).encode())
    assert SCHEMA.parse(SCHEMA.to_record(event)) == event


def test_configured_features_drive_the_schema():
    skab = EventSchema(["Pressure", "Volume Flow RateRMS"], label_column="anomaly")
    event = skab.parse({"sensor_id": "valve1/3", "timestamp": 1583748873000, "Pressure": 0.05,
                        "Volume Flow RateRMS": 32.0, "anomaly": 1})
    assert event.values == (0.05, 32.0) and event.label == 1
    with pytest.raises(EventError, match="Volume Flow RateRMS: field is missing"):
        skab.parse({"sensor_id": "s", "timestamp": 1583748873000, "Pressure": 1.0})


def test_feature_names_must_not_shadow_reserved_columns():
    with pytest.raises(ValueError, match="clash"):
        EventSchema(["timestamp", "feature_1"])


def test_event_json_schema_names_the_real_columns():
    schema = SCHEMA.json_schema()
    assert set(schema["required"]) == {"sensor_id", "timestamp", "feature_1", "feature_2"}
    assert "10_days_alert_label" in schema["properties"]


@pytest.mark.parametrize("sensor_id", [" pad ", "a\nb", "nul\x00id", "tab\t", "ünï/cødé 🔧", "x" * 256])
def test_sensor_ids_are_opaque_kept_exactly_as_sent(sensor_id):
    assert SCHEMA.parse({**GOOD, "sensor_id": sensor_id}).sensor_id == sensor_id
    assert SCHEMA.parse_json(json.dumps({**GOOD, "sensor_id": sensor_id}).encode()).sensor_id == sensor_id
