#!/usr/bin/env bash
# Make the project's virtual environment (default .venv) with the machine's python3, so that pip
# never writes into the system Python: Debian 12 refuses that ("externally-managed-environment",
# PEP 668). Debian ships venv's pip bootstrap (ensurepip) in a separate package, python3-venv;
# when it is missing this script installs it with apt-get (as root, or through sudo), or says
# what to install. Nothing else is installed here. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    exit 0
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "venv: $PYTHON not found; on Debian: apt-get install python3 python3-venv" >&2
    exit 2
fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian's python3 without python3-venv (python3.X-venv holds ensurepip's wheels).
    pkg="python3-venv"
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi
    if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "venv: $PYTHON cannot make a virtual environment (no ensurepip); install $pkg (Debian: apt-get install $pkg) and run again" >&2
        exit 2
    fi
    echo "venv: $PYTHON has no ensurepip; installing the Debian package $pkg"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$pkg"
fi
rm -rf "$VENV"
echo "venv: making $VENV with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
"$PYTHON" -m venv "$VENV"
