#!/bin/sh
# Run a command in a private mount namespace whose /dev/log is the capture socket $LOGSOCK
# (syslogcap.py), so a program that logs only through syslog(3) can be recorded on a host with
# no syslog daemon. Usage: LOGSOCK=/path/log.sock DEVDIR=/path/dev unshare -m ./ns.sh CMD...
# Only this namespace sees the fresh /dev (null, zero, random, urandom bound from the real one).
set -e
: "${LOGSOCK:?}" "${DEVDIR:?}"
mkdir -p "$DEVDIR"
mount --make-rprivate /
mount --rbind /dev "$DEVDIR"
mount -t tmpfs tmpfs /dev
for n in null zero random urandom; do touch /dev/$n; mount --bind "$DEVDIR"/$n /dev/$n; done
ln -s "$LOGSOCK" /dev/log
exec "$@"
