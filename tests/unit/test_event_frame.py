import math

import numpy as np
import pandas as pd
import pytest

from vigil.errors import VigilError
from vigil.events import EventError, EventSchema
from vigil.events.frame import default_features, event_table

ROWS = [
    {"sensor_id": "b", "timestamp": "2024-03-01T00:10:00Z", "feature_1": 2.0, "feature_2": 1.0, "y": 0},
    {"sensor_id": "a", "timestamp": "2024-03-01 00:05:00", "feature_1": 1.0, "feature_2": 1.0, "y": 1},
    {"sensor_id": "a", "timestamp": "1709251200000", "feature_1": 0.5, "feature_2": 1.0, "y": 0},
    {"sensor_id": "a", "timestamp": "not a time", "feature_1": 1.0, "feature_2": 1.0, "y": 0},
    {"sensor_id": "a", "timestamp": "2024-03-01 00:20:00", "feature_1": math.nan, "feature_2": 1.0, "y": 0},
    {"sensor_id": "b", "timestamp": "2024-03-01 00:30:00", "feature_1": math.inf, "feature_2": 1.0, "y": 0},
]


def test_file_rules_match_the_event_schema_row_by_row():
    frame = pd.DataFrame(ROWS)
    table = event_table(frame, ["feature_1", "feature_2"], "y")
    schema = EventSchema(["feature_1", "feature_2"], "y")
    accepted = []
    for row in ROWS:
        # A file cell has no JSON type: digits in a timestamp cell are epoch ms, as a number.
        if str(row["timestamp"]).isdigit():
            row = {**row, "timestamp": int(row["timestamp"])}
        try:
            accepted.append(schema.parse(row))
        except EventError:
            pass
    kept = {(s.sensor_id, int(t)) for s in table for t in s.ts_ms}
    assert kept == {(e.sensor_id, e.timestamp_ms) for e in accepted}
    assert table.dropped == {"not_finite": 2, "bad_timestamp": 1}


def test_file_sensor_ids_are_opaque_like_the_stream_s():
    rows = [{**ROWS[1], "sensor_id": sid} for sid in (" a ", "a", "   ", "a\nb")]
    table = event_table(pd.DataFrame(rows), ["feature_1", "feature_2"], "y")
    assert sorted(table.series) == sorted([" a ", "a", "a\nb"])
    assert table.dropped == {"bad_sensor_id": 1}


def test_series_are_sorted_by_time_with_labels():
    table = event_table(pd.DataFrame(ROWS), ["feature_1", "feature_2"], "y")
    a = table.series["a"]
    assert list(a.ts_ms) == sorted(a.ts_ms)
    assert list(a.values[:, 0]) == [0.5, 1.0] and list(a.labels) == [0, 1]


def test_default_features_are_the_other_numeric_columns():
    frame = pd.DataFrame(ROWS).assign(site="north", changepoint=0)
    assert default_features(frame, "y", exclude=["changepoint"]) == ["feature_1", "feature_2"]


def test_missing_column_is_named():
    with pytest.raises(VigilError, match=r"lacks column\(s\) \['feature_3'\]"):
        event_table(pd.DataFrame(ROWS), ["feature_1", "feature_3"], "y")


def test_text_feature_column_is_an_error_with_an_example():
    frame = pd.DataFrame(ROWS).assign(feature_2=["1", "2", "x", "3", "4", "5"])
    with pytest.raises(VigilError, match="'feature_2' is not numeric \\(e.g. 'x'\\)"):
        event_table(frame, ["feature_1", "feature_2"], "y")


def test_labels_must_be_binary():
    frame = pd.DataFrame(ROWS).assign(y=[0, 1, 2, 0, 0, 0])
    with pytest.raises(VigilError, match="must hold 0/1"):
        event_table(frame, ["feature_1", "feature_2"], "y")


def test_missing_label_column_means_unlabelled():
    table = event_table(pd.DataFrame(ROWS).drop(columns="y"), ["feature_1", "feature_2"], "y")
    assert table.label_column is None
    assert all(np.isnan(s.labels).all() for s in table)


def test_a_repeated_row_counts_once_as_the_buffer_counts_it():
    rows = [ROWS[1], ROWS[1], {**ROWS[1], "feature_1": 9.0}, {**ROWS[1], "sensor_id": "z"}]
    table = event_table(pd.DataFrame(rows), ["feature_1", "feature_2"], "y")
    assert table.series["a"].values[:, 0].tolist() == [1.0, 9.0] and len(table.series["z"].ts_ms) == 1
    assert table.dropped == {"resent": 1}
