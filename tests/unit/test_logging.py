import io
import re
import json

from vigil.logging import configure_logging, get_logger

log_at_import = get_logger("early")  # created before configuration, as module-level loggers are


def test_json_lines_carry_the_component():
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    get_logger("streamer", replica=2).info("batch scored", windows=512)
    log_at_import.warning("still routed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["component"] == "streamer" and first["replica"] == 2 and first["windows"] == 512
    assert first["event"] == "batch scored" and first["level"] == "info" and "timestamp" in first
    assert second["component"] == "early" and second["level"] == "warning"


def test_auto_format_is_json_off_a_terminal_and_console_on_one():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    piped, tty = io.StringIO(), Terminal()
    configure_logging("auto", stream=piped)
    get_logger("trainer").info("epoch done")
    configure_logging("auto", stream=tty)
    get_logger("trainer").info("epoch done")
    assert json.loads(piped.getvalue())["component"] == "trainer"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue())  # drop the terminal colours
    assert "component=trainer" in plain and "epoch done" in plain and not plain.startswith("{")


def test_level_filters_lower_lines():
    stream = io.StringIO()
    configure_logging("json", "warning", stream=stream)
    get_logger("x").info("hidden")
    get_logger("x").error("shown")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["shown"]
