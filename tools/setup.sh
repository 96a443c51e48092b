#!/usr/bin/env bash
# Install everything the exporter, its demo and its whole test suite need, on a fresh Debian
# machine (run as root, or with sudo available). Safe to run again: it skips what is there.
#
# Safe on a mail server: it never installs, removes or stops a mail server. Postfix and Exim
# (the end-to-end suite) and prometheus-postfix-exporter (a benchmark peer whose package
# depends on postfix) are not installed: their Debian packages are downloaded and unpacked
# under .cache/ with `dpkg -x`, which runs no maintainer script and touches nothing outside
# .cache/; the tests run those copies with their own configuration. Every `apt-get install`
# below is first simulated, and refused if it would remove a package or install one that
# provides mail-transport-agent.
#
# Python packages go into a virtual environment (.venv, or $VENV), never into the system
# Python (Debian 12 forbids that, PEP 668).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_updated=""
apt_update() {
    if [ -z "$apt_updated" ]; then $SUDO apt-get update -q; apt_updated=1; fi
}

# The packages of "$@" that are not installed.
missing_debs() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

# apt-get install "$@", after checking apt's plan: nothing removed, no mail-transport-agent.
safe_install() {
    local plan refused=""
    [ -n "${PLAN_ONLY:-}" ] || apt_update
    plan=$(LC_ALL=C apt-get -s install -q --no-install-recommends "$@")
    if grep -q '^Remv ' <<<"$plan"; then
        echo "setup: refusing to install $*: apt would remove $(awk '/^Remv /{printf " %s", $2}' <<<"$plan")" >&2
        exit 1
    fi
    local inst
    inst=$(awk '/^Inst /{print $2}' <<<"$plan")
    if [ -n "$inst" ]; then
        # shellcheck disable=SC2086
        refused=$(apt-cache show --no-all-versions $inst 2>/dev/null | awk '
            /^Package:/ { pkg = $2 }
            /^Provides:/ && /(^|[ ,])mail-transport-agent([ ,(]|$)/ { printf " %s", pkg }')
    fi
    if [ -n "$refused" ]; then
        echo "setup: refusing to install $*: it would bring a mail server (mail-transport-agent):$refused" >&2
        exit 1
    fi
    if [ -n "${PLAN_ONLY:-}" ]; then
        echo "setup: would install:$(awk '/^Inst /{printf " %s", $2}' <<<"$plan")"
        return 0
    fi
    echo "setup: installing Debian packages:$(awk '/^Inst /{printf " %s", $2}' <<<"$plan")"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@"
}

# unpack NAME PACKAGE: download PACKAGE's .deb and unpack it under .cache/NAME (no install).
unpack() {
    local name=$1 pkg=$2
    local dir=".cache/$name" debs=".cache/$name-debs"
    echo "setup: unpacking $pkg into $dir (dpkg -x, not installed)"
    rm -rf "$debs" "$dir"
    mkdir -p "$debs" "$dir"
    # On a fresh machine the apt lists may be empty or stale: update once and retry.
    if ! (cd "$debs" && apt-get download -q "$pkg" >/dev/null 2>&1); then
        apt_update
        (cd "$debs" && apt-get download -q "$pkg" >/dev/null)
    fi
    dpkg -x "$debs"/*.deb "$dir"
}

# The library packages (lib*) among an unpacked package's Depends: what its binaries link to.
lib_depends() {
    dpkg-deb -f ".cache/$1-debs/"*.deb Depends | tr ',' '\n' \
        | sed -e 's/([^)]*)//g' -e 's/|.*//' -e 's/[[:space:]]//g' | grep '^lib' || true
}

# `tools/setup.sh --plan PKG...`: only say what installing PKG... would do, or why it is refused.
if [ "${1:-}" = "--plan" ]; then
    shift
    PLAN_ONLY=1 safe_install "$@"
    exit 0
fi

# The Debian packages the tests use as real parts:
#   prometheus (promtool + the server), logrotate, systemd-journal-remote (builds journal files),
#   mtail (a peer in the benchmark), procps (/bin/kill, the systemd unit's ExecReload, which
#   `systemd-analyze verify` checks; a minimal Debian lacks it).
#   clang-14 and libclang-rt-14-dev build the compiled scanner with AddressSanitizer and
#   libFuzzer's edge counters for the fuzzer (fuzz/run.py --asan, tests/test_fuzz.py).
DEBS="prometheus logrotate systemd-journal-remote mtail procps clang-14 libclang-rt-14-dev"
# A C compiler and the Python headers build exporter._fastscan (the syslog parser's compiled
# scanner, setup.py); tests/test_fastscan.py fails when it is missing.
command -v gcc >/dev/null 2>&1 || DEBS="$DEBS gcc libc6-dev"
"$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || DEBS="$DEBS python3-dev"
# Debian's python3 makes a virtual environment only with python3-venv (ensurepip).
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || DEBS="$DEBS python3-venv"

# Unpacked beside the project, never installed (each conflicts with, or depends on, a mail
# server package): .cache/<dir> <- Debian package, and the program that shows it is there.
UNPACKED="exim4:exim4-daemon-light:usr/sbin/exim4
postfix:postfix:usr/sbin/postfix
postfix-exporter:prometheus-postfix-exporter:usr/bin/prometheus-postfix-exporter"
for entry in $UNPACKED; do
    IFS=: read -r name pkg program <<<"$entry"
    [ -x ".cache/$name/$program" ] || unpack "$name" "$pkg"
    DEBS="$DEBS $(lib_depends "$name" | tr '\n' ' ')"
done

# shellcheck disable=SC2086  # word splitting of the package lists is wanted
missing=$(missing_debs $DEBS | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
    # shellcheck disable=SC2086
    safe_install $missing
    # A service Debian starts on install is not wanted (the tests start their own instances on
    # loopback ports); stop those this run has just installed, and nothing else.
    for svc in prometheus mtail; do
        case " $missing " in *" $svc "*)
            $SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true ;;
        esac
    done
fi

# The users and groups the unpacked servers run as (their packages' maintainer scripts would
# have made them): Debian's exim4 looks up its compiled-in user at start, before reading any
# config; Postfix runs as mail_owner "postfix" and needs the "postdrop" group.
add_system_user() {  # add_system_user USER GROUP HOME
    getent group "$2" >/dev/null || $SUDO groupadd --system "$2"
    getent passwd "$1" >/dev/null || $SUDO useradd --system -g "$2" -d "$3" -M -s /usr/sbin/nologin "$1"
}
add_system_user Debian-exim Debian-exim /var/spool/exim4
add_system_user postfix postfix /var/spool/postfix
getent group postdrop >/dev/null || $SUDO groupadd --system postdrop
# postdrop and postqueue stay plain (not set-gid postdrop as an install makes them): the loader
# ignores LD_LIBRARY_PATH for a set-gid program, and the tests run them as root anyway.

.cache/exim4/usr/sbin/exim4 -C /dev/null -bV >/dev/null 2>&1 \
    || echo "setup: warning: .cache/exim4/usr/sbin/exim4 does not run" >&2
LD_LIBRARY_PATH=.cache/postfix/usr/lib/postfix .cache/postfix/usr/sbin/postconf -c .cache/postfix/etc/postfix -d mail_version >/dev/null 2>&1 \
    || echo "setup: warning: .cache/postfix/usr/sbin/postconf does not run" >&2
.cache/postfix-exporter/usr/bin/prometheus-postfix-exporter --help >/dev/null 2>&1 \
    || echo "setup: warning: .cache/postfix-exporter/usr/bin/prometheus-postfix-exporter does not run" >&2

# What the container tests need (podman, runc, debootstrap), where that script exists.
if [ -x tools/setup-container.sh ]; then ./tools/setup-container.sh; fi

# The Python side: the package and its test extras, in the virtual environment.
# Installed again only when what it is built from changed (a stamp file in the venv), so that a
# second `make test` needs no network.
PYTHON="$PYTHON" ./tools/venv.sh "$VENV"
stamp="$VENV/.ndr-exporter-test-install"
if [ ! -f "$stamp" ] || [ -n "$(find pyproject.toml setup.py exporter/_fastscan.c -newer "$stamp")" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi
