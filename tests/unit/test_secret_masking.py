"""What docs/security.md says `vigil config show` masks (beyond test_settings' sasl.password case)."""

import json

import pytest

from vigil.cli.main import main
from vigil.settings import VigilSettings

SECRET_OPTIONS = ["sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
                  "sasl.oauthbearer.client.secret", "sasl.jaas.config"]
PLAIN_OPTIONS = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "vigil",
                 "ssl.ca.location": "/etc/vigil/kafka-ca.pem", "ssl.key.location": "/etc/vigil/vigil.key"}


pytestmark = pytest.mark.usefixtures("clean_env")


def test_every_documented_secret_option_is_masked_and_the_rest_shown(monkeypatch, capsys):
    client = {**PLAIN_OPTIONS, **{k: f"secret-{i}" for i, k in enumerate(SECRET_OPTIONS)}}
    monkeypatch.setenv("VIGIL_KAFKA__CLIENT", json.dumps(client))
    assert main(["config", "show"]) == 0  # the YAML form
    out = capsys.readouterr().out
    assert "secret-" not in out
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["kafka"]["client"]
    assert shown == {**PLAIN_OPTIONS, **dict.fromkeys(SECRET_OPTIONS, "***")}


@pytest.mark.parametrize("url, masked", [
    ("redis://:hunter2@10.0.0.7:6379/0", "redis://:***@10.0.0.7:6379/0"),  # the default user
    ("rediss://vigil:hunter2@redis.example.net:6380/1", "rediss://vigil:***@redis.example.net:6380/1"),
    ("redis://10.0.0.7:6379/0", "redis://10.0.0.7:6379/0"),
])
def test_the_redis_url_password_is_masked(url, masked):
    assert VigilSettings(redis={"url": url}).redis.masked_url() == masked



def test_a_password_in_the_redis_url_query_string_is_masked():
    url = "redis://vigil@10.0.0.7:6379/0?password=hunter2"
    assert "hunter2" not in VigilSettings(redis={"url": url}).redis.masked_url()



def test_a_secret_written_as_a_bare_number_in_yaml_is_not_echoed(tmp_path, capsys):
    (tmp_path / "vigil.yaml").write_text("kafka:\n  client: {sasl.password: 98765432}\n")
    main(["config", "show"])
    captured = capsys.readouterr()
    assert "98765432" not in captured.out + captured.err
