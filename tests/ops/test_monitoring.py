"""Prometheus rules and config pass promtool (Debian's `prometheus` package; `make test` installs
it), every alert fires when it should, and the dashboard and alerts only ask for metrics that
/api/v1/metrics really exposes."""

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
METRIC_NAME = re.compile(r"\b((?:paydesk|django)_[a-z0-9_]+|up)\b")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=DOCKER)


def test_promtool_checks_the_alert_rules():
    result = promtool("check", "rules", "prometheus/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_promtool_checks_the_prometheus_config_and_its_rule_files(tmp_path):
    # The scrape's credentials_file is compose's metrics_token secret, mounted beside the config
    # at run time (never in the repository): promtool gets a stand-in in a copy of docker/'s files.
    shutil.copy(DOCKER / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copytree(DOCKER / "prometheus", tmp_path / "prometheus")
    (tmp_path / "metrics_token").write_text("stand-in")
    result = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_on_a_bad_hour_and_not_on_a_good_one():
    result = promtool("test", "rules", "prometheus/alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_named_in_the_issue_exist_with_runbooks_where_an_operator_acts():
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    for name in (
        "PaydeskOutboxBacklogGrowing",
        "PaydeskDeadLetters",
        "PaydeskGatewayErrorRate",
        "PaydeskReviewQueueAging",
        "PaydeskHigh5xxRate",
        "PaydeskWebhookDeliveriesOverdue",
    ):
        assert name in rules
        assert rules[name]["labels"]["severity"] in ("warning", "critical")
    readme = (ROOT / "README.md").read_text().lower()
    for rule in rules.values():
        if "runbook" in rule["annotations"]:
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert f"### {anchor.replace('-', ' ')}" in readme, f"README has no runbook '{anchor}'"


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard():
    datasource = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text())
    [prometheus] = datasource["datasources"]
    assert (prometheus["type"], prometheus["uid"], prometheus["url"]) == (
        "prometheus",
        "prometheus",
        "http://prometheus:9090",
    )
    provider = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/paydesk.yml").read_text())[
        "providers"
    ][0]
    assert (
        provider["options"]["path"] == "/etc/grafana/dashboards"
    )  # where compose mounts docker/grafana/dashboards
    dashboard = json.loads((DOCKER / "grafana/dashboards/paydesk.json").read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 15
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], panel["title"]


@pytest.fixture
def exposed_names(client, auth_client, settings) -> set[str]:
    """Every sample name a scrape can show: a real scrape after some traffic, plus every family
    Paydesk declares (labelled families have no samples until something happens)."""
    settings.METRICS_DB_CACHE_SECONDS = 0
    auth_client.post(
        "/api/v1/payments",
        {"amount": 700, "currency": "USD", "payment_method": "tok_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    client.get("/api/v1/health/live")
    text = client.get("/api/v1/metrics").content.decode()
    names = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    for name, (kind, _, _) in metrics.state_families().items():
        names.add(f"{name}_total" if kind == "counter" else name)
    for histogram in (metrics.GATEWAY_LATENCY, metrics.REVIEW_DECISION):
        names.update(f"{histogram._name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    names.update({f"{metrics.CELERY_TASKS._name}_total", "paydesk_metrics_database_up", "up"})
    names.add("paydesk_webhook_deliveries_total")  # counted in the worker that sends (apps.events.metrics)
    return names


@pytest.mark.django_db
def test_dashboard_and_alerts_ask_only_for_exposed_metrics(exposed_names):
    assert "django_http_responses_total_by_status_total" in exposed_names
    assert "paydesk_gateway_request_duration_seconds_bucket" in exposed_names
    dashboard = json.loads((DOCKER / "grafana/dashboards/paydesk.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    groups = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())["groups"]
    expressions += [rule["expr"] for group in groups for rule in group["rules"]]
    for expr in expressions:
        unknown = set(METRIC_NAME.findall(expr)) - exposed_names
        assert not unknown, f"{expr!r} asks for {unknown}, which /api/v1/metrics does not expose"
