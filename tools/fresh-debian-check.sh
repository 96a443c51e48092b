#!/usr/bin/env bash
# The README's first two commands on a fresh Debian 12, as a new user would run them: a minimal
# bookworm (debootstrap --variant=minbase, plus Debian's python3 and make) in a chroot, a fresh
# clone of this repository's HEAD in it, then
#   1. `make demo`: waits until it serves, checks the landing page and /metrics, stops it;
#   2. `.ci/run` (`make test` with the end-to-end tests required), or `make test
#      PYTEST_ARGS=...` when arguments are given;
# and compares the chroot's package list before and after: nothing removed, no package that
# provides mail-transport-agent. Needs root and debootstrap; uses the Debian mirror apt uses here.
#
#   tools/fresh-debian-check.sh /tmp/ndr-fresh                 # the whole suite (minutes)
#   tools/fresh-debian-check.sh /tmp/ndr-fresh tests/e2e       # setup + a subset
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: tools/fresh-debian-check.sh DIR [PYTEST_ARGS...]}
shift
ROOT="$DIR/root"
MIRROR=$(awk '/^URIs:/ && /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

mkdir -p "$DIR"
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    debootstrap --variant=minbase --include=python3,make,ca-certificates bookworm "$ROOT" "$MIRROR"
fi
# apt inside uses the same sources as here (the Debian ones only)
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -f "$f" ] && grep -q debian "$f" && cp "$f" "$ROOT$f"
done
cp /etc/hosts /etc/resolv.conf "$ROOT/etc/"
# A TLS-intercepting proxy's CA, where this host has one (pip must reach PyPI through it).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null
fi
# No package starts a service inside: the chroot shares this host's network.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# The demo's python, among the processes under the backgrounded `make demo` (found by parent pid).
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
stop_demo() {
    local pid
    for pid in $(descendants "$demo_pid"); do
        if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'exporter.cli demo'; then kill -INT "$pid"; fi
    done
    wait "$demo_pid" 2>/dev/null || true
    demo_pid=""
}
cleanup() {
    [ -z "${demo_pid:-}" ] || stop_demo
    umount "$ROOT/proc" "$ROOT/sys" 2>/dev/null || true
    umount -R "$ROOT/dev" 2>/dev/null || true
}
trap cleanup EXIT
mount --bind /proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
mount --bind /sys "$ROOT/sys"

rm -rf "$ROOT/root/ndr-exporter"
git clone -q "$REPO" "$ROOT/root/ndr-exporter"
# CI lays shared/ (the public log corpus) beside its clone (tests/helpers/shared.py).
SHARED=$(cd "$REPO" && python3 -c 'from tests.helpers.shared import SHARED; print(SHARED)' 2>/dev/null || true)
if [ -n "$SHARED" ] && [ -d "$SHARED/eval" ]; then
    mkdir -p "$ROOT/root/shared" && cp -r "$SHARED/eval" "$ROOT/root/shared/"
fi

inside() {
    chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt /bin/bash -c "cd /root/ndr-exporter && $1"
}
packages() { inside "dpkg-query -W -f='\${Package} \${Status}\n'" | awk '$NF == "installed" {print $1}' | sort; }
packages > "$DIR/packages-before"

echo "== make demo"
inside "make demo" > "$DIR/demo.log" 2>&1 &
demo_pid=$!
url=$(for _ in $(seq 1 200); do grep -o 'open http://[^ ]*/' "$DIR/demo.log" 2>/dev/null && break; sleep 1; done | head -1)
url=${url#open }
[ -n "$url" ] || { echo "make demo printed no URL:"; cat "$DIR/demo.log"; exit 1; }
for _ in $(seq 1 60); do curl -fs -o /dev/null "$url" && break; sleep 1; done
sleep 5
echo "$url -> $(curl -s -o /dev/null -w '%{http_code}' "$url")"
curl -fs "${url}metrics" | grep '^ndr_exporter_lines_total'
stop_demo
tail -n 2 "$DIR/demo.log"

echo "== make test"
status=0
if [ $# -gt 0 ]; then
    inside "NDR_REQUIRE_E2E=1 make test PYTEST_ARGS='$*'" || status=$?
else
    inside ".ci/run" || status=$?
fi
packages > "$DIR/packages-after"
removed=$(comm -23 "$DIR/packages-before" "$DIR/packages-after")
added=$(comm -13 "$DIR/packages-before" "$DIR/packages-after")
mta=$(inside "apt-cache show --no-all-versions ${added//$'\n'/ } 2>/dev/null" \
      | awk '/^Package:/ {p = $2} /^Provides:/ && /mail-transport-agent/ {print p}')
echo "== packages: $(wc -l < "$DIR/packages-before") before, $(wc -l < "$DIR/packages-after") after;" \
     "removed: ${removed:-none}; providing mail-transport-agent among the added: ${mta:-none}"
echo "== make test exit status: $status"
[ -z "$removed" ] && [ -z "$mta" ] && [ "$status" = 0 ]
