import json

import pytest

from vigil.cli.main import build_parser, main
from vigil.events.files import read_events


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("VIGIL_"):
            monkeypatch.delenv(key)


def test_help_lists_every_design_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("services", "config", "simulate", "stream", "train", "evaluate", "backtest", "demo"):
        assert f"    {command}" in out


def test_services_help_explains_each_action(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["services", "--help"])
    out = capsys.readouterr().out
    for action in ("up", "down", "status", "topics"):
        assert action in out
    assert "Maven Central" in out and "AOF" in out


def test_simulate_to_file_writes_a_fleet(tmp_path, capsys):
    out_file = tmp_path / "fleet.parquet"
    truth = tmp_path / "truth.csv"
    code = main(["simulate", "--sensors", "20", "--days", "0.5", "--seed", "3",
                 "--to-file", str(out_file), "--truth-out", str(truth)])
    assert code == 0
    frame = read_events(out_file)
    assert frame.sensor_id.nunique() == 20
    assert frame["10_days_alert_label"].max() == 1
    assert f"{len(frame)} events from 20 sensors (1 alerting)" in capsys.readouterr().out
    assert len(read_events(truth)) == 20


def test_bad_duration_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--interval", "soon", "--to-file", "x.csv"])
    assert exit_info.value.code == 2
    assert "not a duration: 'soon'" in capsys.readouterr().err


def test_unsupported_output_type_is_a_clear_error(capsys):
    assert main(["simulate", "--sensors", "2", "--days", "0.1", "--to-file", "fleet.xlsx"]) == 1
    assert "unknown event file type '.xlsx'" in capsys.readouterr().err


@pytest.mark.parametrize("topic, field", [("scores", "model_version"), ("alerts", "alert_id"), ("events", "timestamp")])
def test_schema_prints_each_topics_json_schema(capsys, topic, field):
    assert main(["schema", topic]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert field in doc["properties"]


def test_schema_documents_dead_letter_headers(capsys):
    assert main(["schema", "dlq"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "vigil.reason" in schema["properties"] and "vigil.reason" in schema["required"]
    assert "not_json" in schema["properties"]["vigil.reason"]["enum"]


def test_inspect_names_an_unreachable_redis(monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_REDIS__URL", "redis://127.0.0.1:1/0")
    assert main(["inspect", "--sensor", "s-1"]) == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in capsys.readouterr().err


def test_stream_help_explains_draining(capsys):
    with pytest.raises(SystemExit):
        main(["stream", "--help"])
    assert "SIGTERM" in capsys.readouterr().out


def test_services_refuse_remote_hosts(monkeypatch, capsys):
    monkeypatch.setenv("VIGIL_KAFKA__BOOTSTRAP_SERVERS", "kafka.example.internal:9092")
    assert main(["services", "status"]) == 1
    assert "not on 127.0.0.1" in capsys.readouterr().err


def test_a_tailed_alert_says_what_drove_it():
    from vigil.cli.tail_cmd import describe

    class Msg:
        def __init__(self, data):
            self.data = data

        def value(self):
            return json.dumps(self.data).encode()

    alert = {"sensor_id": "s-1", "window_start": 0, "window_end": 864_000_000, "n_events": 1440, "score": 0.9,
             "threshold": 0.5, "model_version": "v1", "scored_at": 1, "alert_id": "a" * 32, "kind": "alert",
             "explanation": {"features": [{"feature": "feature_2", "share": 0.61}, {"feature": "feature_1",
                             "share": 0.3}], "span_start": 777_600_000, "span_end": 864_000_000}}
    line = describe("alerts", Msg(alert))
    assert "driven by feature_2 61%, feature_1 30% in 01-10 00:00 → 01-11 00:00" in line
    assert "driven by" not in describe("alerts", Msg({**alert, "explanation": None}))


def _subcommand_parsers(parser):
    """Every parser under ``parser`` (commands and their actions), with its command path."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                for sub_name, grandchild in _subcommand_parsers(child):
                    yield f"{name} {sub_name}", grandchild


def test_every_help_text_renders_without_format_leftovers():
    parser = build_parser()
    pages = {"vigil": parser.format_help()}
    pages.update((name, child.format_help()) for name, child in _subcommand_parsers(parser))
    assert len(pages) > 15
    for name, text in pages.items():
        assert "%%" not in text and "%(" not in text, f"`vigil {name} --help` shows a raw format sequence"


@pytest.mark.parametrize("argv", [["models", "list"], ["models", "list", "--json"]])
def test_models_takes_model_dir_before_or_after_the_action(tmp_path, argv):
    parser = build_parser()
    after = parser.parse_args([*argv, "--model-dir", str(tmp_path)])
    before = parser.parse_args([argv[0], "--model-dir", str(tmp_path), *argv[1:]])
    assert after.model_dir == before.model_dir == tmp_path
    assert parser.parse_args(argv).model_dir is None


def test_every_registry_command_takes_model_dir(tmp_path):
    parser = build_parser()
    for argv in (["train", "--events", "x.csv"], ["evaluate", "--events", "x.csv"],
                 ["backtest", "--events", "x.csv"], ["stream"], ["demo"], ["models", "prune", "--keep", "1"],
                 ["models", "promote", "v1"]):
        assert parser.parse_args([*argv, "--model-dir", str(tmp_path)]).model_dir == tmp_path, argv


def test_models_list_with_model_dir_reads_that_registry(tmp_path, capsys):
    code = main(["models", "list", "--json", "--model-dir", str(tmp_path / "none")])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["root"] == str(tmp_path / "none")


def test_cli_keeps_tensorflow_native_logs_off_stderr(tmp_path):
    """A fresh process: `vigil models list` loads TensorFlow, whose C++ start-up lines stay hidden,
    and come back with --verbose."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [sys.executable, "-m", "vigil.cli.main", "models", "list", "--json", "--model-dir", str(tmp_path)]
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "absl::InitializeLog" not in quiet.stderr and ".cc:" not in quiet.stderr, quiet.stderr
    loud = subprocess.run([*argv[:3], "--verbose", *argv[3:]], env=env, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert ".cc:" in loud.stderr, "with --verbose TensorFlow's own lines show"


def test_dlq_replay_since_takes_a_duration_or_iso_time():
    from vigil.cli.dlq_cmd import since_ms
    from vigil.errors import VigilError

    now = 1_767_225_600_000
    assert since_ms("6h", now) == now - 6 * 3_600_000
    assert since_ms("2026-01-01T00:00:00Z", now) == now
    assert since_ms(None, now) is None
    with pytest.raises(VigilError, match="neither ISO-8601"):
        since_ms("last tuesday", now)


def test_tail_json_is_one_line_per_record_with_key_and_headers():
    from confluent_kafka import Message

    from vigil.cli.tail_cmd import describe, record_json

    msg = Message(topic="sensor-events.dlq", partition=0, offset=7, key=b"a\nb", value=b"{broken\n}",
                  headers=[("vigil.reason", b"not_json"), ("vigil.detail", b"line\nbreak")], timestamp=(1, 5))
    line = record_json(msg)
    assert "\n" not in line
    record = json.loads(line)
    assert record["key"] == "a\nb" and record["value"] == "{broken\n}" and record["headers"]["vigil.reason"] == "not_json"
    readable = describe("dlq", msg)
    assert "\n" not in readable and 'key "a\\nb"' in readable


def test_numeric_defaults_in_help_match_the_parsed_defaults():
    """A help text that says "(default N)" for a number says what the option really defaults to."""
    import re

    parser = build_parser()
    checked = 0
    for name, child in _subcommand_parsers(parser):
        for action in child._actions:
            shown = child._get_formatter()._expand_help(action) if action.help else ""  # as --help prints it
            said = re.search(r"\(default:? ([-+]?[\d.,]+)\)", shown)
            if said is None or isinstance(action.default, bool) or not isinstance(action.default, (int, float)):
                continue
            checked += 1
            assert float(said.group(1).replace(",", "")) == action.default, (
                f"`vigil {name} {action.option_strings[0]}` says default {said.group(1)}, parses {action.default}")
    assert checked > 10


def test_inspect_shows_each_event_time_in_iso_beside_its_epoch_ms():
    from vigil.cli.inspect_cmd import readable

    shown = readable({"sensor_id": "s", "first_bin_start_ms": 1767225600000, "last_timestamp_ms": 1767229200000,
                      "bins": 2})
    assert list(shown) == ["sensor_id", "first_bin_start", "first_bin_start_ms", "last_timestamp",
                           "last_timestamp_ms", "bins"]
    assert shown["first_bin_start"].startswith("2026-01-01T00:00:00") and shown["last_timestamp"].startswith("2026-01-01T01:00")
    assert readable({"first_bin_start_ms": None})["first_bin_start"] is None
