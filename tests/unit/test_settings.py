import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from vigil.cli.main import main
from vigil.durations import format_duration, parse_duration
from vigil.settings import CONFIG_FILE_ENV, VigilSettings


pytestmark = pytest.mark.usefixtures("clean_env")



def test_defaults_match_the_design():
    s = VigilSettings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.topics.partitions() == {
        "sensor-events": 6, "sensor-scores": 6, "sensor-alerts": 3, "sensor-events.dlq": 1,
    }
    assert s.window.length == timedelta(days=10)
    assert s.window.steps == 240
    assert s.features == ["feature_1", "feature_2"]
    assert s.label_column == "10_days_alert_label"


def test_environment_overrides_nested_values(monkeypatch):
    monkeypatch.setenv("VIGIL_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.5:9092,10.0.0.6:9092")
    monkeypatch.setenv("VIGIL_TOPICS__EVENTS_PARTITIONS", "12")
    monkeypatch.setenv("VIGIL_WINDOW__LENGTH", "6h")
    monkeypatch.setenv("VIGIL_FEATURES", "Pressure, Temperature")
    s = VigilSettings()
    assert s.kafka.bootstrap_servers == "10.0.0.5:9092,10.0.0.6:9092"
    assert s.topics.partitions()["sensor-events"] == 12
    assert s.window.length == timedelta(hours=6)
    assert s.features == ["Pressure", "Temperature"]


def test_kafka_client_options_pass_through_to_clients(monkeypatch):
    monkeypatch.setenv("VIGIL_KAFKA__CLIENT", json.dumps({"security.protocol": "SASL_SSL", "sasl.password": "pw"}))
    config = VigilSettings().kafka.client_config(**{"group.id": "g"})
    assert config == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_SSL",
                      "sasl.password": "pw", "group.id": "g"}


def test_yaml_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    path = tmp_path / "custom.yaml"
    path.write_text("window:\n  length: 10s\n  steps: 10\nfeatures: [a, b, c]\nredis:\n  url: redis://10.1.1.1:6380/2\n")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(path))
    monkeypatch.setenv("VIGIL_WINDOW__STEPS", "20")
    s = VigilSettings()
    assert s.window.length == timedelta(seconds=10)
    assert s.window.steps == 20
    assert s.features == ["a", "b", "c"]
    assert s.redis.url.get_secret_value() == "redis://10.1.1.1:6380/2"


def test_dotenv_file_in_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("VIGIL_LABEL_COLUMN=alert\n")
    assert VigilSettings().label_column == "alert"


def test_missing_yaml_file_named_by_env_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_FILE_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        VigilSettings()


@pytest.mark.parametrize(
    "env, value, fragment",
    [
        ("VIGIL_WINDOW__LENGTH", "ten days", "not a duration"),
        ("VIGIL_WINDOW__LENGTH", "0s", "must be positive"),
        ("VIGIL_WINDOW__STEPS", "0", "greater than or equal to 1"),
        ("VIGIL_TOPICS__EVENTS_PARTITIONS", "many", "valid integer"),
        ("VIGIL_LOG_FORMAT", "xml", "pattern"),
    ],
)
def test_bad_values_are_rejected_with_the_reason(monkeypatch, env, value, fragment):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=fragment):
        VigilSettings()


@pytest.mark.parametrize("env, value", [("VIGIL_STREAM__SCORE_EVERY_EVENTS", "5"),
                                        ("VIGIL_STREAM__SCORE_MIN_INTERVAL", "5m")])
def test_removed_cadence_settings_are_an_error_that_names_the_new_one(monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match="was removed.*set stream.score_every"):
        VigilSettings()


def test_the_cadence_follows_the_window_by_default_and_zero_scores_every_event():
    from vigil.buffer import Cadence

    assert Cadence.from_settings(VigilSettings()).every_ms == 3_600_000  # one bin of a 10-day, 240-bin window
    assert Cadence.from_settings(VigilSettings(stream={"score_every": "15m"})).every_ms == 900_000
    assert not Cadence.from_settings(VigilSettings(stream={"score_every": "0"})).enabled


def test_config_show_masks_secrets(monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_REDIS__URL", "redis://vigil:hunter2@10.0.0.7:6379/0")
    monkeypatch.setenv("VIGIL_KAFKA__CLIENT", json.dumps({"sasl.password": "s3cret", "sasl.username": "bob"}))
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "s3cret" not in out
    shown = json.loads(out)
    assert shown["redis"]["url"] == "redis://vigil:***@10.0.0.7:6379/0"
    assert shown["kafka"]["client"] == {"sasl.password": "***", "sasl.username": "bob"}
    assert shown["window"]["length"] == "10d"


def test_config_error_is_a_clear_cli_error(monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_WINDOW__LENGTH", "fortnight")
    assert main(["config", "show"]) == 1
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "window.length" in err and "Traceback" not in err


@pytest.mark.parametrize("text, expected", [
    ("10d", timedelta(days=10)), ("6h", timedelta(hours=6)), ("10s", timedelta(seconds=10)),
    ("1h30m", timedelta(minutes=90)), ("500ms", timedelta(milliseconds=500)), ("90", timedelta(seconds=90)),
])
def test_durations_parse_and_print_back(text, expected):
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "d10", "10 days", "10x", "1h-5m"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="e.g. 10d"):
        parse_duration(text)
