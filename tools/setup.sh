#!/usr/bin/env bash
# Install everything the exporter, its demo and its whole test suite need, on a fresh
# Debian machine (run as root, or with sudo available). Safe to run again: it skips
# what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages the tests use as real parts:
#   prometheus (promtool + the server), logrotate, systemd-journal-remote (builds journal files),
#   postfix (end-to-end suite; exim4 is unpacked beside it by tests/e2e, the two conflict as packages),
#   prometheus-postfix-exporter and mtail (peers in the benchmark).
DEBS="prometheus logrotate systemd-journal-remote postfix prometheus-postfix-exporter mtail"
# A C compiler and the Python headers build exporter._fastscan (the syslog parser's compiled
# scanner, setup.py); tests/test_fastscan.py fails when it is missing.
command -v gcc >/dev/null 2>&1 || DEBS="$DEBS gcc libc6-dev"
python3 -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || DEBS="$DEBS python3-dev"
missing=""
for pkg in $DEBS; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    $SUDO apt-get update -q
    # postfix asks questions at install time; answer them for a loopback-only test box.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
    # The Debian services are not wanted running: the tests start their own instances.
    for svc in postfix prometheus prometheus-postfix-exporter mtail; do
        $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
        $SUDO service "$svc" stop >/dev/null 2>&1 || true
    done
fi

# The Debian postfix service is not wanted running (tests/e2e starts its own instances with
# `postfix -c DIR`); stop the default instance if an install or a reboot started it.
if command -v postfix >/dev/null 2>&1 && $SUDO postfix status >/dev/null 2>&1; then
    $SUDO postfix stop >/dev/null 2>&1 || true
fi

# Exim conflicts with postfix as a package: keep its unpacked binary under .cache/exim4 for
# tests/e2e, which runs it with its own `-C config`. Only the daemon package is unpacked (dpkg -x
# runs no maintainer scripts, so exim4-config never configures anything); its shared libraries
# come from Debian as usual.
EXIM_DEB=exim4-daemon-light
if [ ! -x .cache/exim4/usr/sbin/exim4 ]; then
    echo "setup: unpacking exim4 into .cache/exim4"
    rm -rf .cache/exim4-debs .cache/exim4
    mkdir -p .cache/exim4-debs .cache/exim4
    # On a fresh machine the apt lists may be empty or stale: update once and retry.
    if ! (cd .cache/exim4-debs && apt-get download -q "$EXIM_DEB" >/dev/null 2>&1); then
        $SUDO apt-get update -q
        (cd .cache/exim4-debs && apt-get download -q "$EXIM_DEB" >/dev/null)
    fi
    for deb in .cache/exim4-debs/*.deb; do dpkg -x "$deb" .cache/exim4; done
fi
# The libraries the exim binary links against (the lib* entries of its Depends).
exim_libs=$(dpkg-deb -f .cache/exim4-debs/"$EXIM_DEB"_*.deb Depends | tr ',' '\n' \
    | sed -e 's/([^)]*)//g' -e 's/|.*//' -e 's/[[:space:]]//g' | grep '^lib' || true)
missing=""
for pkg in $exim_libs; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "setup: installing exim4's libraries:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
# Debian's exim4 looks up its compiled-in user at start, before reading any config.
if ! getent passwd Debian-exim >/dev/null; then
    getent group Debian-exim >/dev/null || $SUDO groupadd --system Debian-exim
    $SUDO useradd --system -g Debian-exim -d /var/spool/exim4 -M -s /usr/sbin/nologin Debian-exim
fi
.cache/exim4/usr/sbin/exim4 -C /dev/null -bV >/dev/null 2>&1 || echo "setup: warning: .cache/exim4/usr/sbin/exim4 does not run" >&2

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
