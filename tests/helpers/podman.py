"""Podman for tests/test_container.py: a private configuration, a stand-in base image, the build.

No Docker engine or registry is reachable where the suite runs, so the Dockerfile's base image
(its FROM, python:3.11-slim-bookworm) is replaced by a stand-in: a minimal Debian bookworm made
with debootstrap from the mirror apt already uses, holding Debian's python3 with venv and headers,
imported into podman under the FROM name. The image is then built from the committed Dockerfile
with `podman build --pull=never`.

Everything lives under .cache/container/ in the repository (git-ignored): podman's configuration
(containers.conf, storage.conf: runc, cgroupfs, a file events logger, explicit ulimits, the host's
network), its image storage, and the base's root file system as a tar file, so a second run
reuses the base and the build's cached layers. The host's own podman configuration is not touched:
the files are passed through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

from tests.helpers.exporter_process import REPO

CACHE = REPO / ".cache" / "container"
IMAGE = "localhost/ndr-exporter:test"
SUITE = "bookworm"
# What python:3.11-slim-bookworm gives the Dockerfile: python (and `python -m venv`) and the Python
# headers; gcc is not here, as it is not in the slim image: the build stage installs it with apt.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "python3-dev", "ca-certificates")
TOOLS = ("podman", "runc", "debootstrap")


class PodmanError(RuntimeError):
    pass


def base_image_name() -> str:
    """The Dockerfile's FROM, fully qualified as podman stores it (docker.io/library/...)."""
    froms = re.findall(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), flags=re.MULTILINE)
    name = froms[0]
    if "/" not in name:
        name = "library/" + name
    if name.count("/") == 1:
        name = "docker.io/" + name
    return name


def debian_mirror(suite: str = SUITE) -> str | None:
    """The URI apt uses for `suite` main (deb822 .sources or one-line .list files), or None."""
    apt = Path("/etc/apt")
    files = [apt / "sources.list"] + sorted((apt / "sources.list.d").glob("*"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", block, flags=re.MULTILINE))
                if ("deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split()
                        and "main" in fields.get("Components", "").split()):
                    return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                    return words[1]
    return None


def _nproc_limit() -> int:
    # runc sets every rlimit on the container's first process; without CAP_SYS_RESOURCE (as in
    # this sandbox) it is refused for an nproc above the one podman's own processes get, which
    # here is the kernel's pid_max. The host's limit, capped at pid_max, is accepted everywhere.
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    return pid_max if hard == resource.RLIM_INFINITY else min(hard, pid_max)


def _nofile_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 20000 if hard == resource.RLIM_INFINITY else min(hard, 20000)


def write_config() -> dict[str, str]:
    """Write podman's configuration under CACHE; the environment variables that select it."""
    CACHE.mkdir(parents=True, exist_ok=True)
    nofile, nproc = _nofile_limit(), _nproc_limit()
    (CACHE / "containers.conf").write_text(f"""\
# Written by tests/helpers/podman.py for the container test; not the host's configuration.
[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{CACHE / 'events.log'}"
""")
    (CACHE / "storage.conf").write_text(f"""\
# Written by tests/helpers/podman.py for the container test; not the host's configuration.
[storage]
driver = "overlay"
graphroot = "{CACHE / 'storage'}"
runroot = "{CACHE / 'run'}"
""")
    return {"CONTAINERS_CONF": str(CACHE / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(CACHE / "storage.conf")}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run podman with the configuration under CACHE; PodmanError with its output when check fails."""
    env = {**os.environ, **write_config()}
    result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def why_podman_cannot_run() -> str | None:
    """None when podman can build and run images here, else the reason (for a pytest skip)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (tools/setup-container.sh installs podman, runc and debootstrap)"
    if os.geteuid() != 0:
        return "debootstrap and this podman setup (runc, cgroupfs, host network) need root"
    if debian_mirror() is None:
        return f"no Debian mirror for {SUITE} main in /etc/apt/sources.list*: nothing to debootstrap from"
    info = podman("info", check=False, timeout=60)
    if info.returncode != 0:
        return f"`podman info` fails here: {info.stderr.strip()[-500:]}"
    return None


def _base_tar() -> Path:
    key = hashlib.sha256(" ".join((SUITE, *BASE_PACKAGES)).encode()).hexdigest()[:12]
    return CACHE / f"base-{SUITE}-{key}.tar"


def make_base_tar(log: list[str]) -> Path:
    """debootstrap the stand-in base into a tar file under CACHE (kept: later runs reuse it)."""
    tar = _base_tar()
    if tar.exists():
        return tar
    mirror = debian_mirror()
    rootfs = CACHE / "rootfs.tmp"
    shutil.rmtree(rootfs, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                    SUITE, str(rootfs), mirror], check=True, capture_output=True, text=True, timeout=1800)
    # The base trusts what the host trusts, so the build stage's pip reaches PyPI from this host
    # (whose egress may go through a TLS proxy with its own CA); a real base on an open network
    # needs neither the bundle nor the pip.conf.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
    partial = tar.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True, timeout=600)
    partial.rename(tar)
    shutil.rmtree(rootfs)
    log.append(f"debootstrap {SUITE} from {mirror}: {time.monotonic() - started:.0f}s")
    return tar


def ensure_base(log: list[str]) -> str:
    """The stand-in base image, imported under the Dockerfile's FROM name unless already there."""
    name = base_image_name()
    tar = make_base_tar(log)
    label = f"ndr-exporter.stand-in={tar.name}"
    present = podman("image", "inspect", "--format", "{{json .Labels}}", name, check=False)
    if present.returncode == 0 and tar.name in present.stdout:
        return name
    started = time.monotonic()
    podman("import", "--change", f"LABEL {label}", "--change", "ENV LANG=C.UTF-8",
           "--change", 'CMD ["python3"]', str(tar), name, timeout=600)
    log.append(f"podman import {name}: {time.monotonic() - started:.0f}s")
    return name


def build_image(log: list[str]) -> str:
    """Build IMAGE from the committed Dockerfile (docker format, so HEALTHCHECK is kept).

    A lock file keeps two test sessions from debootstrapping into the same folder at once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_base(log)
        started = time.monotonic()
        podman("build", "--pull=never", "--network=host", "--format=docker", "--layers", "-t", IMAGE,
               "-f", str(REPO / "Dockerfile"), str(REPO), timeout=1800)
        log.append(f"podman build: {time.monotonic() - started:.0f}s")
    return IMAGE
