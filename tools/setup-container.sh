#!/usr/bin/env bash
# Install what tests/test_container.py needs to build and run the image (tools/setup.sh calls
# this; it can also be run alone, as root or with sudo). Safe to run again: it skips what is
# already there. None of these is a mail server, and nothing on the host is started or stopped:
#   podman       builds the image from the Dockerfile (`podman build --pull=never`) and runs it
#   runc         the OCI runtime the test configures podman to use
#   debootstrap  makes the stand-in for the base image (no registry is reachable from CI)
# The test keeps its podman configuration, image storage and the debootstrapped base under
# .cache/container/ and passes them with CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, so the
# host's own podman configuration and storage are left alone.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-container: no apt-get here; the container tests will be skipped (they say why)"
    exit 0
fi

missing=""
for pkg in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "setup-container: installing Debian packages:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
