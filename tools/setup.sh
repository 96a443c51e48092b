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

# Exim conflicts with postfix as a package: keep its unpacked files under .cache/exim4 for tests/e2e.
if [ ! -x .cache/exim4/usr/sbin/exim4 ]; then
    echo "setup: unpacking exim4 into .cache/exim4"
    mkdir -p .cache/exim4-debs .cache/exim4
    (cd .cache/exim4-debs && apt-get download -q exim4-daemon-light exim4-base exim4-config >/dev/null)
    for deb in .cache/exim4-debs/*.deb; do dpkg -x "$deb" .cache/exim4; done
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
