"""The `ndr-exporter` command: serve (the daemon), explain, report, backfill, demo.

PLACEHOLDER wiring for the service issue, which owns flags, config loading and the
HTTP endpoint; the subcommand names and the flags below are the contract others test with.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from exporter.config import ServeConfig, SourceConfig

SUBCOMMANDS = ("explain", "report", "backfill", "demo")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "explain":
        from exporter import explain
        return explain.main(argv[1:])
    return serve(argv)


def _parse_serve_args(argv: list[str]) -> ServeConfig:
    parser = argparse.ArgumentParser(prog="ndr-exporter")
    parser.add_argument("--source.path", dest="paths", action="append", default=[],
                        help="a log file or glob to follow (repeatable); the source is named after the file")
    parser.add_argument("--source.format", dest="fmt", default="auto")
    parser.add_argument("--start-at", dest="start_at", choices=("end", "beginning"), default="end")
    parser.add_argument("--poll", action="store_true")
    parser.add_argument("--state-file", dest="state_file")
    parser.add_argument("--web.listen-address", dest="listen_address", default=ServeConfig.listen_address)
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics")
    args = parser.parse_args(argv)
    sources = [SourceConfig(name=p.rsplit("/", 1)[-1], path=p, format=args.fmt,
                            start_at=args.start_at, poll=args.poll) for p in args.paths]
    return ServeConfig(sources=sources, listen_address=args.listen_address,
                       telemetry_path=args.telemetry_path, state_file=args.state_file)


def serve(argv: list[str]) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from exporter.daemon import Daemon
    from exporter.metrics import MetricsCollector

    config = _parse_serve_args(argv)
    daemon = Daemon(config)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(daemon.metrics))
    host, _, port = config.listen_address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    daemon.start()
    stop.wait()
    daemon.stop()
    return 0
