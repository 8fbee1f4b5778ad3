"""The Kubernetes manifests: every overlay renders with kustomize, validates against the Kubernetes
schemas (strict, offline), and says what matters: gRPC probes on the server's port, a headless
Service, ports equal to the server's settings, a grace period longer than the server's, and the
translation models each overlay serves (and its init container fetches)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = sorted(p.name for p in (ROOT / "deploy" / "k8s" / "overlays").iterdir() if p.is_dir())

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is needed")


def render(overlay: str) -> str:
    done = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_overlays_exist() -> None:
    assert {"cpu", "gpu"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_validates_strictly_and_the_validator_is_not_blind(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(render(overlay))
    done = validate(rendered)
    assert done.returncode == 0, done.stdout + done.stderr
    # The same rendering with one misspelt field must fail, or the check above proves nothing.
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered.read_text().replace("readinessProbe:", "readynessProbe:", 1))
    assert validate(broken).returncode != 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_what_matters_in_the_rendered_manifests(overlay: str) -> None:
    documents = [d for d in yaml.safe_load_all(render(overlay)) if d]
    by_kind: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    (config,) = by_kind["ConfigMap"]
    settings = config["data"]
    port, metrics_port = int(settings["TARJAMA_PORT"]), int(settings["TARJAMA_METRICS_PORT"])
    assert settings["TARJAMA_HOST"] == "0.0.0.0" and settings["TARJAMA_AUTH_TOKENS_FILE"], "public only with tokens"
    assert settings["TARJAMA_METRICS_HOST"] == "0.0.0.0" and settings["TARJAMA_METRICS_TOKEN_FILE"], "so are metrics"
    assert settings["TARJAMA_METRICS_TOKEN_FILE"].startswith("/etc/tarjama/auth/"), "from the tarjama-auth Secret"

    (deployment,) = by_kind["Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scheme"] == ("https" if settings.get("TARJAMA_TLS_CERT") else "http")
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"grpc": port, "metrics": metrics_port}
    assert server["startupProbe"]["grpc"]["port"] == port
    assert server["readinessProbe"]["grpc"] == {"port": port, "service": "tarjama.v1.Translator"}
    assert server["livenessProbe"]["grpc"]["port"] == port
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "room for a first download and conversion"
    assert pod["terminationGracePeriodSeconds"] > float(settings["TARJAMA_GRACE_PERIOD_S"])
    for container in [server, *pod.get("initContainers", [])]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
        assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["tarjama", "models", "download"]
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"tarjama-auth", "tarjama-tls"}

    services = {s["metadata"]["name"]: s["spec"] for s in by_kind["Service"]}
    headless = services["tarjama-headless"]
    assert headless["clusterIP"] == "None" and headless["ports"][0]["port"] == port
    assert services["tarjama"]["type"] == "ClusterIP"
    assert by_kind["PodDisruptionBudget"]
    (hpa,) = by_kind["HorizontalPodAutoscaler"]
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    exporter = ROOT / "src" / "tarjama" / "server" / "edges" / "metrics.py"
    assert metric == "tarjama_queue_tokens" and metric in exporter.read_text()
    if overlay == "gpu":
        assert settings["TARJAMA_DEVICE"] == "cuda" and server["resources"]["limits"]["nvidia.com/gpu"] == "1"


DATABASE_SECRET = ROOT / "deploy" / "k8s" / "database-secret.example.yaml"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_glossary_database_comes_from_an_optional_secret_and_sqlite_has_a_writable_state_dir(
    overlay: str,
) -> None:
    from tarjama.server.settings import parse_settings

    documents = [d for d in yaml.safe_load_all(render(overlay)) if d]
    (config,) = [d for d in documents if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert not [d for d in documents if d["kind"] == "Secret"], "no password in the repository's manifests"
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    # The URL (with its password) from the tarjama-database Secret, never the ConfigMap; optional, so a
    # cluster without that Secret starts, on SQLite.
    assert "TARJAMA_DATABASE_URL" not in config["data"]
    (url,) = [v for v in server["env"] if v["name"] == "TARJAMA_DATABASE_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "tarjama-database", "key": "url", "optional": True}
    for init in pod["initContainers"]:  # the model download has no use for it
        assert "TARJAMA_DATABASE_URL" not in {v["name"] for v in init.get("env", [])}
    # SQLite's file (and its journal beside it) in --state-dir: a writable volume there, the root being
    # read-only; read as `tarjama serve` reads its environment.
    settings = parse_settings([], config["data"])
    state_dir = str(settings.resolved_state_dir())
    assert state_dir == "/var/lib/tarjama" and not settings.database_url
    (mount,) = [m for m in server["volumeMounts"] if m["mountPath"] == state_dir]
    assert not mount.get("readOnly")
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume or "persistentVolumeClaim" in volume


def test_the_example_database_secret_matches_the_deployment_and_holds_no_password() -> None:
    done = validate(DATABASE_SECRET)
    assert done.returncode == 0, done.stdout + done.stderr
    (secret,) = [d for d in yaml.safe_load_all(DATABASE_SECRET.read_text()) if d]
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "tarjama-database"
    from urllib.parse import urlsplit

    url = urlsplit(secret["stringData"]["url"])
    assert url.scheme == "postgresql" and url.password == "REPLACE-ME", "a placeholder, documented as one"
    for overlay in OVERLAYS:  # no overlay applies it
        assert "REPLACE-ME" not in render(overlay)


def test_the_init_containers_command_exists() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tarjama.client.cli", "models", "download", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--cache-dir" in done.stdout


# The translation models each overlay serves, the default first: tc-big leads where a GPU makes it cheap,
# opus-mt-ar-en on CPU (throughput), and each serves the other by name. A new overlay needs its entry here.
EXPECTED_MODELS = {
    "cpu": [("fast", "Helsinki-NLP/opus-mt-ar-en"), ("best", "Helsinki-NLP/opus-mt-tc-big-ar-en")],
    "gpu": [("best", "Helsinki-NLP/opus-mt-tc-big-ar-en"), ("fast", "Helsinki-NLP/opus-mt-ar-en")],
}
GB = 10**9


def quantity(text: str) -> int:
    """A Kubernetes memory quantity in bytes (the binary suffixes these manifests use, or plain bytes)."""
    units = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    number, unit = re.fullmatch(r"(\d+)([KMGT]i)?", text).groups()  # type: ignore[union-attr]
    return int(number) * units[unit or ""]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_serves_its_models_and_the_init_container_fetches_them(overlay: str) -> None:
    from tarjama.server.settings import parse_settings

    documents = [d for d in yaml.safe_load_all(render(overlay)) if d]
    (config,) = [d for d in documents if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    # Read as `tarjama serve` reads its environment, so a misspelt list fails here, not in a pod.
    settings = parse_settings([], config["data"])
    assert [(m.name, m.ref) for m in settings.translation_models()] == EXPECTED_MODELS[overlay]

    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (server,) = pod["containers"]
    # The init container downloads what the server serves: the same ConfigMap, nothing in either that
    # overrides the models, and the one cache volume mounted where --cache-dir points.
    for container in (init, server):
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        assert not [v for v in container.get("env", []) if v["name"].startswith("TARJAMA_TRANSLATION_")]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["cache"] == settings.cache_dir
    # The init container has no GPU: with compute type auto it would convert for CPU (int8), and the GPU
    # server would then convert both models again (float16) at every start.
    if settings.device == "cuda":
        assert settings.compute_type != "auto"
        assert "nvidia.com/gpu" not in init["resources"].get("limits", {})

    # Memory: a two-model CPU pod needs about 1.5 GB (a one-model pod had 1 Gi); a GPU pod's host memory is
    # mostly the CUDA runtime, so more; the limit leaves a GiB over the request for long batches on both
    # models at once. tc-big's conversion peaked at 1.8 GB; the init container's limit keeps twice that.
    requests, limits = server["resources"]["requests"], server["resources"]["limits"]
    assert quantity(requests["memory"]) >= (1.5 * GB if settings.device == "cpu" else 4 * GB)
    assert quantity(limits["memory"]) >= quantity(requests["memory"]) + 2**30
    assert quantity(init["resources"]["limits"]["memory"]) >= 2 * 1.8 * GB
