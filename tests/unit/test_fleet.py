import numpy as np
import pytest

from vigil.events import EventSchema
from vigil.simulate import ANOMALY_KINDS, FleetSpec, generate_fleet


@pytest.fixture(scope="module")
def fleet():
    return generate_fleet(FleetSpec(sensors=200, days=10, seed=7))


def test_five_percent_of_sensors_alert_and_labels_say_so(fleet):
    truth = fleet.truth
    assert truth.alerting.sum() == 10
    labels = fleet.events.groupby("sensor_id")["10_days_alert_label"].agg(["min", "max"])
    assert (labels["min"] == labels["max"]).all()  # the label is the sensor's, constant
    assert set(labels.index[labels["max"] == 1]) == fleet.alerting_sensors


def test_events_follow_the_seed_schema_and_publish_order(fleet):
    schema = EventSchema(["feature_1", "feature_2"])
    rows = fleet.events.sample(500, random_state=0).to_dict("records")
    assert all(schema.parse(r).sensor_id == r["sensor_id"] for r in rows)
    assert fleet.events.timestamp.is_monotonic_increasing


def test_timestamps_are_irregular_and_minutes_apart(fleet):
    gaps = fleet.events.groupby("sensor_id").timestamp.diff().dropna() / 60_000
    assert gaps.min() >= 0.5
    assert 5 < gaps.median() < 10  # exponential gaps with a 10-minute mean
    assert gaps.std() > 3  # irregular, not a fixed cadence
    span_days = (fleet.events.timestamp.max() - fleet.events.timestamp.min()) / 86_400_000
    assert 9.9 < span_days <= 10


def test_sensors_sit_at_different_operating_points(fleet):
    normal = fleet.events[fleet.events["10_days_alert_label"] == 0]
    means = normal.groupby("sensor_id")[["feature_1", "feature_2"]].mean()
    within = normal.groupby("sensor_id")[["feature_1", "feature_2"]].std().median()
    assert (means.std() > 5 * within).all()


def test_several_anomaly_kinds_occur_with_onsets_in_the_last_days():
    big = generate_fleet(FleetSpec(sensors=400, days=10, seed=3))
    alerting = big.truth[big.truth.alerting]
    assert alerting.kind.nunique() >= 5 and set(alerting.kind) <= set(ANOMALY_KINDS)
    end = big.events.timestamp.max()
    assert ((end - alerting.onset_ms) / 86_400_000).between(0.9, 4.1).all()


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_anomaly_kind_changes_the_signal_after_onset(kind):
    spec = FleetSpec(sensors=20, days=10, alert_fraction=0.05, kinds=(kind,), seed=11)
    fleet = generate_fleet(spec)
    (row,) = fleet.truth[fleet.truth.alerting].itertuples()
    events = fleet.events[fleet.events.sensor_id == row.sensor_id]
    x = events[["feature_1", "feature_2"]].to_numpy()
    before, after = x[events.timestamp < row.onset_ms], x[events.timestamp >= row.onset_ms]
    standard = (after - before.mean(0)) / before.std(0)
    corr_before = np.corrcoef(before.T)[0, 1]
    corr_after = np.corrcoef(after.T)[0, 1] if after.std(0).min() > 0 else 0.0
    changed = (
        np.abs(standard.mean(0)).max() > 1.0  # level shift, drift
        or np.abs(np.log(after.std(0) / before.std(0))).max() > np.log(1.8)  # variance up or stuck
        or np.abs(standard).max() > 5.5  # spikes
        or abs(corr_before - corr_after) > 0.3  # decorrelation
    )
    assert changed, kind


def test_same_seed_same_fleet_other_seed_other_fleet():
    a = generate_fleet(FleetSpec(sensors=30, days=1, seed=5))
    b = generate_fleet(FleetSpec(sensors=30, days=1, seed=5))
    c = generate_fleet(FleetSpec(sensors=30, days=1, seed=6))
    assert a.events.equals(b.events)
    assert not a.events.equals(c.events)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"sensors": 0}, "at least one sensor"),
    ({"alert_fraction": 1.5}, "between 0 and 1"),
    ({"kinds": ("meteor",)}, "unknown anomaly kinds"),
])
def test_bad_specs_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        FleetSpec(**kwargs)
