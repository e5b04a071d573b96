"""The Grafana dashboard and the Prometheus/Grafana provisioning in deploy/: every query parses as
PromQL and names only metrics (and labels) that the streamer's registry really exposes, so a renamed
metric in streamer/metrics.py fails here instead of leaving an empty panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from tests.unit.deploy_checks import ROOT, exposed_metrics

DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

# Grafana's macros are not PromQL: put a value of the right kind in their place before parsing.
_MACROS = {
    "$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
    "${__rate_interval}": "1m", "${__interval}": "1m", "${__range}": "1h",
}

# What the issue asks the dashboard to show: events/s, lag, DLQ by reason, scoring latency, alerts.
REQUIRED = {
    "events per second": ("vigil_events_consumed_total", None),
    "consumer lag": ("vigil_consumer_lag", None),
    "dead letters by reason": ("vigil_events_dead_lettered_total", "reason"),
    "scoring latency": ("vigil_scoring_seconds_bucket", "le"),
    "processing latency": ("vigil_processing_seconds_bucket", "le"),
    "sensors on several partitions": ("vigil_sensors_on_several_partitions_total", None),
    "alerts": ("vigil_alerts_published_total", None),
    "scores by detection head": ("vigil_scores_by_head_total", "head"),
}


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels inside collapsed rows
    return out


def _exprs(dashboard: dict) -> list[tuple[str, str]]:
    return [(p.get("title", "?"), t["expr"]) for p in _panels(dashboard) for t in p.get("targets", []) if "expr" in t]


def _parse(expr: str):
    for macro, value in _MACROS.items():
        expr = expr.replace(macro, value)
    if "$" in expr:
        raise AssertionError(f"unknown Grafana variable in {expr!r}")
    return promql_parser.parse(expr)


def selectors(expr: str) -> list[tuple[str | None, set[str]]]:
    """(metric name, label names used with it) for every selector in a PromQL expression: label
    names from its matchers and from the aggregations' by/without clauses that enclose it."""
    found: list[tuple[str | None, set[str]]] = []

    def walk(node, grouping: set[str]) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            labels = {m.name for m in node.matchers.matchers} - {"__name__"}
            found.append((node.name, labels | grouping))
            return
        if kind == "AggregateExpr" and node.modifier is not None:
            grouping = grouping | set(node.modifier.labels)
        for attr in ("expr", "lhs", "rhs", "param", "vector_selector", "vs"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child, grouping)
        for child in getattr(node, "args", None) or []:
            walk(child, grouping)

    walk(_parse(expr), set())
    return found


@pytest.fixture(scope="module")
def metrics() -> dict[str, set[str]]:
    return exposed_metrics()


def test_there_is_a_dashboard() -> None:
    assert DASHBOARDS, "expected deploy/grafana/dashboards/*.json"


def test_the_metric_list_is_the_registry_s(metrics: dict) -> None:
    # A sanity check of the helper itself: the names the brief lists, with their series suffixes.
    for name in ("vigil_events_consumed_total", "vigil_events_dead_lettered_total", "vigil_buffer_writes_total",
                 "vigil_batch_windows_bucket", "vigil_scoring_seconds_bucket", "vigil_end_to_end_seconds_count",
                 "vigil_scores_published_total", "vigil_alerts_published_total", "vigil_consumer_lag",
                 "vigil_retries_total", "vigil_offset_commits_total", "vigil_model_swaps_total", "vigil_model_info"):
        assert name in metrics
    assert metrics["vigil_events_dead_lettered_total"] == {"reason"}
    assert "vigil_consumer_lag_total" not in metrics


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_uses_only_metrics_and_labels_the_streamer_exposes(path: Path, metrics: dict) -> None:
    dashboard = json.loads(path.read_text())
    exprs = _exprs(dashboard)
    assert exprs, f"{path.name} has no queries"
    for title, expr in exprs:
        for name, labels in selectors(expr):
            assert name is not None, f"panel {title!r}: a selector without a metric name in {expr!r}"
            assert name in metrics, f"panel {title!r}: {name} is not exposed by streamer.metrics.StreamMetrics ({expr!r})"
            unknown = labels - metrics[name] - {"job", "instance"}  # the two Prometheus adds to every series
            assert not unknown, f"panel {title!r}: {name} has no label(s) {sorted(unknown)} ({expr!r})"


def test_the_checker_catches_a_metric_that_does_not_exist(metrics: dict) -> None:
    bad = "sum by (reason) (rate(vigil_events_dropped_total[$__rate_interval])) / sum(vigil_consumer_lag{topic='x'})"
    found = selectors(bad)
    assert ("vigil_events_dropped_total", {"reason"}) in found and "vigil_events_dropped_total" not in metrics
    assert ("vigil_consumer_lag", {"topic"}) in found and "topic" not in metrics["vigil_consumer_lag"]
    with pytest.raises(Exception):
        _parse("sum(rate(vigil_events_consumed_total[5m])")  # unbalanced: not PromQL


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_dashboard_shows_what_the_issue_asks_for(path: Path) -> None:
    used = [(name, labels) for _, expr in _exprs(json.loads(path.read_text())) for name, labels in selectors(expr)]
    for what, (metric, label) in REQUIRED.items():
        assert any(n == metric and (label is None or label in ls) for n, ls in used), f"no panel for {what} ({metric})"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        # Every panel and query names its datasource through the dashboard's variable, so the same
        # JSON works in the compose Grafana and in any other (Kubernetes) Grafana.
        for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert ref["type"] == "prometheus"
            match = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
            assert match and variables[match.group(1)]["type"] == "datasource"


def test_grafana_provisioning_parses_and_points_at_prometheus() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "vigil.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")


def test_prometheus_config_scrapes_the_streamer_metrics_path() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    streamer = jobs["vigil-streamer"]
    assert streamer.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in streamer["static_configs"] for t in group["targets"]]
    assert targets and all(re.fullmatch(r"[\w.-]+:\d+", t) for t in targets)
