import hashlib

import numpy as np
import pandas as pd
import pytest

from vigil.cli.main import build_parser, main
from vigil.events import EventSchema
from vigil.events.files import read_events
from vigil.simulate import ALL_ANOMALY_KINDS, ANOMALY_KINDS, PROFILES, FleetSpec, generate_fleet

DAY_MS = 86_400_000


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
    ({"kinds": ("meteor",)}, "unknown anomaly kinds.*degradation"),
    ({"kinds": ()}, "unknown anomaly kinds"),
    ({"kinds": "drift"}, "not a string"),
    ({"profile": "turbofan"}, "unknown fleet profile 'turbofan'; choose from operating_points, identical"),
    ({"features": ()}, "at least one feature"),
])
def test_bad_specs_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        FleetSpec(**kwargs)


def _digest(frame: pd.DataFrame) -> str:
    """Exact content, columns and order included; independent of pandas' own hashing."""
    h = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        h.update(name.encode())
        if column.dtype.kind in "fiub":
            h.update(column.to_numpy(dtype=np.float64 if column.dtype.kind == "f" else np.int64).tobytes())
        else:
            h.update("\n".join(map(str, column)).encode())
    return h.hexdigest()


# Computed from the simulator before profiles and degradation existed: tests and benchmarks pin
# fleets by seed, so the default fleet must not change by a single draw.
def test_the_default_fleet_is_unchanged_draw_for_draw(fleet):
    small = generate_fleet(FleetSpec(sensors=30, days=1, seed=5))
    assert len(small.events) == 4199
    assert _digest(small.events) == "5a759ddb5b24a58f2d705ca579f07ca2f67ac6446c702821f87bc550abbe1faf"
    first, last = small.events.iloc[0], small.events.iloc[-1]
    assert (first.sensor_id, first.timestamp) == ("sensor-00004", 1767225601000)
    assert (first.feature_1, first.feature_2) == (-41.36852639273776, 76.17812781371953)
    assert (last.sensor_id, last.timestamp, last.feature_1) == ("sensor-00020", 1767311994173, 9.03442936008397)
    alerting = small.truth[small.truth.alerting]
    assert alerting[["sensor_id", "kind", "onset_ms"]].values.tolist() == [
        ["sensor-00019", "variance_burst", 1767283941729], ["sensor-00024", "stuck", 1767300562572]]
    assert list(small.truth.columns) == ["sensor_id", "alerting", "kind", "onset_ms", "features"]
    assert _digest(fleet.events) == "f525705c68177c170d29b60e5b02cfe704d1e18c6939996f32e02e04dd34dec1"
    assert FleetSpec().anomaly_kinds == ANOMALY_KINDS and "degradation" not in ANOMALY_KINDS


def _operating_spread(fleet, columns):
    """Between-sensor spread of normal sensors' means, relative to the typical within-sensor spread."""
    normal = fleet.events[fleet.events["10_days_alert_label"] == 0]
    means = normal.groupby("sensor_id")[columns].mean()
    within = normal.groupby("sensor_id")[columns].std().median()
    return means.std() / within


def test_identical_units_share_one_operating_point():
    cols = ["feature_1", "feature_2"]
    identical = generate_fleet(FleetSpec(sensors=60, days=5, seed=2, profile="identical"))
    ratio = _operating_spread(identical, cols)
    assert (ratio < 0.6).all() and (ratio > 0.1).all()  # nearly equal, yet not clones
    spread = generate_fleet(FleetSpec(sensors=60, days=5, seed=2))
    assert (_operating_spread(spread, cols) > 5).all()  # the same seed, the default profile
    assert "degradation" in FleetSpec(profile="identical").anomaly_kinds


@pytest.fixture(scope="module")
def univariate():
    return generate_fleet(FleetSpec(sensors=40, days=10, seed=2, profile="univariate_daily"))


def test_univariate_daily_has_one_feature_and_a_cadence_per_sensor(univariate):
    assert list(univariate.events.columns) == ["sensor_id", "timestamp", "feature_1", "10_days_alert_label"]
    events = univariate.events
    medians = events.groupby("sensor_id").timestamp.diff().groupby(events.sensor_id).median() / 60_000
    assert medians.min() <= 6 and medians.max() >= 50  # 5 minutes to an hour, regardless of --interval
    assert medians.between(4.5, 66).all()


def test_univariate_daily_mixes_units_over_orders_of_magnitude(univariate):
    normal = univariate.events[univariate.events["10_days_alert_label"] == 0]
    spreads = normal.groupby("sensor_id").feature_1.std()
    assert np.log10(spreads.max() / spreads.min()) >= 3


def test_univariate_daily_cycles_daily(univariate):
    normal = univariate.events[univariate.events["10_days_alert_label"] == 0]

    def autocorr(group, lag_hours):
        hourly = group.set_index(pd.to_datetime(group.timestamp, unit="ms")).feature_1.resample("1h").mean()
        return hourly.interpolate().autocorr(lag_hours)

    by_sensor = normal.groupby("sensor_id")[["timestamp", "feature_1"]]
    assert by_sensor.apply(autocorr, lag_hours=24).median() > 0.6
    assert by_sensor.apply(autocorr, lag_hours=12).median() < -0.3  # a cycle, not mere persistence


@pytest.mark.parametrize("profile", PROFILES)
def test_degradation_starts_with_the_series_and_accelerates(profile):
    fleet = generate_fleet(FleetSpec(sensors=20, days=10, kinds=("degradation",), seed=13, profile=profile))
    (row,) = fleet.truth[fleet.truth.alerting].itertuples()
    events = fleet.events[fleet.events.sensor_id == row.sensor_id]
    assert row.kind == "degradation" and row.onset_ms == events.timestamp.min()
    columns = list(fleet.spec.event_features)
    day = ((events.timestamp - events.timestamp.min()) // DAY_MS).to_numpy()
    first_day = events.loc[day == 0, columns]
    daily = ((events[columns] - first_day.mean()) / first_day.std()).groupby(day).mean()  # no daily cycle
    for name in row.features.split(";"):
        path = daily[name] * np.sign(daily[name].iloc[-1])
        assert path.iloc[-1] > 2.5
        assert path.iloc[-1] > 3 * path.iloc[len(path) // 2]  # slow, then faster towards the end
        assert pd.Series(path.to_numpy()).corr(pd.Series(np.arange(len(path))), method="spearman") > 0.9


def test_truth_names_the_features_an_anomaly_altered_and_only_those():
    features = ("a", "b", "c", "d")
    fleet = generate_fleet(FleetSpec(sensors=30, days=10, kinds=("level_shift",), alert_fraction=0.5, seed=4,
                                     features=features))
    truth = fleet.truth
    assert (truth.loc[~truth.alerting, "features"] == "").all()
    partial = 0
    for row in truth[truth.alerting].itertuples():
        altered = row.features.split(";")
        assert altered and set(altered) <= set(features)
        partial += len(altered) < len(features)
        events = fleet.events[fleet.events.sensor_id == row.sensor_id]
        x = events[list(features)]
        before, after = x[events.timestamp < row.onset_ms], x[events.timestamp >= row.onset_ms]
        moved = ((after.mean() - before.mean()) / before.std()).abs()
        assert (moved[altered] > 2).all() and (moved.drop(altered) < 0.7).all(), (row.features, moved.tolist())
    assert partial >= 3  # the truth is not simply "all features"


@pytest.mark.parametrize("kind", ["stuck", "decorrelation"])
def test_kinds_that_act_on_the_whole_sensor_name_every_feature(kind):
    fleet = generate_fleet(FleetSpec(sensors=20, days=2, kinds=(kind,), alert_fraction=0.25, seed=8,
                                     features=("a", "b", "c")))
    assert (fleet.truth.loc[fleet.truth.alerting, "features"] == "a;b;c").all()


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_is_reproducible_from_its_seed(profile):
    a = generate_fleet(FleetSpec(sensors=10, days=1, seed=5, profile=profile))
    b = generate_fleet(FleetSpec(sensors=10, days=1, seed=5, profile=profile))
    assert a.events.equals(b.events) and a.truth.equals(b.truth)
    assert set(a.truth.kind.dropna()) <= set(ALL_ANOMALY_KINDS)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("VIGIL_"):
            monkeypatch.delenv(key)
    return tmp_path


def test_simulate_cli_takes_a_profile_and_kinds(isolated, capsys):
    code = main(["simulate", "--profile", "univariate_daily", "--kinds", "level_shift, drift", "--sensors", "12",
                 "--days", "1", "--alert-fraction", "0.5", "--to-file", "fleet.csv", "--truth-out", "truth.csv"])
    assert code == 0
    assert list(read_events("fleet.csv").columns) == ["sensor_id", "timestamp", "feature_1", "10_days_alert_label"]
    assert "VIGIL_FEATURES=feature_1" in capsys.readouterr().out
    alerting = read_events("truth.csv").query("alerting")
    assert len(alerting) == 6 and set(alerting.kind) <= {"level_shift", "drift"}
    assert (alerting.features == "feature_1").all()


def test_simulate_cli_writes_the_altered_features_to_the_truth(isolated):
    assert main(["simulate", "--profile", "identical", "--kinds", "stuck", "--sensors", "8", "--days", "1",
                 "--alert-fraction", "1", "--to-file", "fleet.csv", "--truth-out", "truth.csv"]) == 0
    truth = read_events("truth.csv")  # sniffs the delimiter: the ';' inside features must not fool it
    assert list(truth.columns) == ["sensor_id", "onset", "alerting", "kind", "onset_ms", "features"]
    assert (truth.features == "feature_1;feature_2").all() and len(truth) == 8
    assert (pd.to_datetime(truth.onset).dt.as_unit("ms").astype("int64") == truth.onset_ms).all()


def test_simulate_cli_refuses_unknown_kinds_and_lists_the_valid_ones(isolated, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--kinds", "drift,meteor", "--to-file", "x.csv"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown anomaly kinds meteor" in err and ", ".join(ALL_ANOMALY_KINDS) in err


def test_simulate_help_renders_the_new_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["simulate", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--profile" in out and "univariate_daily" in out and "--kinds" in out and "degradation" in out


def test_identical_fleets_of_different_seeds_are_the_same_product():
    # A model trained on one identical fleet is tested on another: their units share one operating point.
    def normal_means(seed):
        fleet = generate_fleet(FleetSpec(sensors=30, days=2, seed=seed, profile="identical", alert_fraction=0))
        return fleet.events.groupby("sensor_id")[["feature_1", "feature_2"]].mean().median()

    within = generate_fleet(FleetSpec(sensors=30, days=2, seed=1, profile="identical", alert_fraction=0)).events
    spread = within.groupby("sensor_id")[["feature_1", "feature_2"]].std().median()
    assert ((normal_means(1) - normal_means(2)).abs() < 0.5 * spread).all()
