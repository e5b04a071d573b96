"""Fixtures shared by unit tests."""

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No VIGIL_* variable, no vigil.yaml or .env: settings are the defaults plus what a test sets
    (they read the environment, .env and vigil.yaml in the working directory)."""
    for name in list(os.environ):
        if name.upper().startswith("VIGIL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
