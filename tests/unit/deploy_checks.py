"""Shared checks for the deployment files (docker-compose.yml, deploy/k8s, deploy/grafana): do the
commands, environment variables and metric names they use exist in Vigil itself?"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
from pathlib import Path
from typing import Iterator

import pytest
from pydantic import BaseModel

from vigil.settings import CONFIG_FILE_ENV, VigilSettings

ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "VIGIL_"


# -- the CLI ---------------------------------------------------------------------------------------
def parse_vigil_args(args: list[str]) -> argparse.Namespace:
    """Parse ``vigil ARGS`` with the real parser; fail the test (with argparse's message) if it refuses."""
    from vigil.cli.main import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args([str(a) for a in args])
    except SystemExit:
        pytest.fail(f"`vigil {shlex.join(map(str, args))}` is not a valid command line: {err.getvalue().strip()}")


_SHELL_KEYWORDS = {"then", "else", "elif", "do", "exec", "!", "{", "(", "if", "while", "until"}


def vigil_invocations_in_shell(script: str) -> list[list[str]]:
    """The argument lists of every ``vigil ...`` simple command in a shell script."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    found = []
    for words in commands:
        while words and words[0] in _SHELL_KEYWORDS:
            words = words[1:]
        if words and words[0] == "vigil":
            found.append(words[1:])
    return found


# -- settings --------------------------------------------------------------------------------------
def setting_for_env(name: str) -> str:
    """The dotted settings field that a ``VIGIL_*`` variable sets (``VIGIL_STREAM__METRICS_HOST`` →
    ``stream.metrics_host``); fails the test when no field matches, as pydantic-settings would
    silently ignore it."""
    if name == CONFIG_FILE_ENV:
        return "<config file>"
    assert name.startswith(ENV_PREFIX), f"{name} is not a Vigil setting (no {ENV_PREFIX} prefix)"
    parts = name[len(ENV_PREFIX):].lower().split("__")
    model: type[BaseModel] = VigilSettings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            pytest.fail(f"{name}: {'.'.join(parts[:i + 1])} is not a field of {model.__name__}")
        if i < len(parts) - 1:
            nested = field.annotation
            if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
                pytest.fail(f"{name}: {'.'.join(parts[:i + 1])} has no nested fields")
            model = nested
    return ".".join(parts)


@contextlib.contextmanager
def settings_environment(env: dict[str, str], workdir: Path) -> Iterator[None]:
    """Only ``env`` as VIGIL_* variables, in a directory without .env or vigil.yaml."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    cwd = Path.cwd()
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
        os.chdir(workdir)
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)
        os.chdir(cwd)


def settings_from_env(env: dict[str, str], workdir: Path) -> VigilSettings:
    """VigilSettings as a container with exactly this environment would build them."""
    for name in env:
        if name.startswith(ENV_PREFIX):
            setting_for_env(name)
    with settings_environment(env, workdir):
        return VigilSettings()


# -- metrics ---------------------------------------------------------------------------------------
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name the streamer's registry exposes, with its label names (``le`` for buckets).
    Names come from the registry's metric families, so a labelled counter counts before its first
    increment; label names from the metric objects (prometheus_client has no public accessor)."""
    from prometheus_client.metrics import MetricWrapperBase

    from streamer.metrics import StreamMetrics

    metrics = StreamMetrics()
    labels = {m._name: set(m._labelnames) for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}  # noqa: SLF001
    names: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for suffix in _SUFFIXES[family.type]:
            names[family.name + suffix] = labels.get(family.name, set()) | ({"le"} if suffix == "_bucket" else set())
    return names
