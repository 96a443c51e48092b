"""The `ndr-exporter` command: serve (the daemon, the default), explain, report, backfill, demo.

The entry point of the whole pipeline. `serve` merges settings (flag > environment
variable > config file > default), checks them, starts the daemon (sources -> parsers
-> classifier -> metrics) and the HTTP endpoint (exporter.web), then waits for
signals: SIGHUP re-reads the config file's sources, SIGTERM and SIGINT stop cleanly
(checkpoints flushed) with exit status 0; the handlers are installed first, so a stop
signal also ends a start that is still reading or blocked (Signals). A bad flag or config
exits 2 with the field named; so does a start with no source, or with a state file whose
folder is missing or not writable, or that is not a regular file (a pipe, a socket, a device). The other subcommands live in their own modules (each with its own argparse
parser), imported only when used; a mistyped command or flag gets the nearest known one
as a suggestion. Every logger of the package is named `ndr_exporter.*`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import signal
import sys
import threading
from typing import Any

from exporter import __version__
from exporter.argparsing import SuggestingParser
from exporter.config import (
    LOG_FORMATS, LOG_LEVELS, START_AT, ConfigError, ServeConfig, SourceConfig, check_code_cap, check_format,
    check_listen_address, check_state_file, check_telemetry_path, check_unique_names, load_config_file,
)

SUBCOMMANDS = ("explain", "report", "backfill", "demo")
COMMANDS = ("serve",) + SUBCOMMANDS
PROG = "ndr-exporter"
log = logging.getLogger("ndr_exporter.cli")

# Environment variables that stand in for flags (a flag on the command line wins).
ENV = {
    "config_file": "NDR_EXPORTER_CONFIG_FILE",
    "listen_address": "NDR_EXPORTER_LISTEN_ADDRESS",
    "telemetry_path": "NDR_EXPORTER_TELEMETRY_PATH",
    "web_config_file": "NDR_EXPORTER_WEB_CONFIG_FILE",
    "state_file": "NDR_EXPORTER_STATE_FILE",
    "code_cap": "NDR_EXPORTER_CODE_CAP",
    "series_cap": "NDR_EXPORTER_SERIES_CAP",
    "log_level": "NDR_EXPORTER_LOG_LEVEL",
    "log_format": "NDR_EXPORTER_LOG_FORMAT",
}
FLAG = {
    "config_file": "--config.file",
    "listen_address": "--web.listen-address",
    "telemetry_path": "--web.telemetry-path",
    "web_config_file": "--web.config.file",
    "state_file": "--state.file",
    "code_cap": "--metrics.code-cap",
    "series_cap": "--metrics.series-cap",
    "log_level": "--log.level",
    "log_format": "--log.format",
}


# Old flag spellings, still accepted (hidden from --help): old -> new.
OLD_FLAGS = {"--state-file": "--state.file", "--start-at": "--source.start-at", "--poll": "--source.poll"}
NO_SOURCE = ("sources", "none configured; give --source.path FILE (e.g. /var/log/mail.log), --source.journald "
                        "or --source.stdin, or list sources in --config.file")
EXIT_BROKEN_PIPE = 141   # what a shell shows for a command stopped by SIGPIPE (128 + 13)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        return serve(argv)   # no command: serve, the default
    command = argv[0]
    if command == "serve":
        return serve(argv[1:])
    if command in SUBCOMMANDS:
        try:
            status = run_subcommand(command, argv[1:])
            sys.stdout.flush()   # here, so that a closed pipe is met inside this try
        except BrokenPipeError:
            return _quiet_broken_pipe()
        return status
    print(f"{PROG}: {unknown_command(command)}", file=sys.stderr)
    return 2


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (`report --json FILE | head`): stop without a traceback.
    stdout is pointed at /dev/null so that the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def unknown_command(command: str) -> str:
    """The error for a first argument that is no command, with the nearest command if one is close."""
    import difflib

    close = difflib.get_close_matches(command, COMMANDS, n=1, cutoff=0.6)
    if close:
        return f"unknown command {command!r}; did you mean {close[0]!r}?"
    return f"unknown command {command!r}; commands: {', '.join(COMMANDS)} (serve is the default)"


def run_subcommand(name: str, argv: list[str]) -> int:
    """Import exporter.<name> only now, and run its main(argv)."""
    try:
        module = importlib.import_module(f"exporter.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"exporter.{name}":
            raise
        print(f"{PROG}: the {name!r} command is not available in this installation "
              f"(module exporter.{name} is missing)", file=sys.stderr)
        return 2
    return int(module.main(argv))


# --- flags -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog=PROG,
        commands=COMMANDS,
        usage=f"{PROG} [serve] [flags]  |  {PROG} {{{','.join(SUBCOMMANDS)}}} --help",
        description="Follow mail-server logs and export the SMTP status codes they hold as Prometheus metrics.",
        epilog=f"Commands: serve (the default: these flags), {', '.join(SUBCOMMANDS)}; "
               f"`{PROG} COMMAND --help` for each. "
               "Environment variables: " + ", ".join(f"{ENV[k]} ({FLAG[k]})" for k in ENV) + ". "
               "Old flag spellings still accepted: " + ", ".join(f"{o} ({n})" for o, n in OLD_FLAGS.items()) + ".")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--config.file", dest="config_file", metavar="FILE",
                        help="YAML config file: sources, state_file, web, log, metrics")
    parser.add_argument("--config.check", dest="config_check", action="store_true",
                        help="check the config (and web config) and exit: 0 if usable, 2 if not")
    parser.add_argument("--source.path", dest="paths", action="append", default=[], metavar="PATH",
                        help="a log file or glob to follow (repeatable); the source is named after the file")
    parser.add_argument("--source.stdin", dest="stdin", action="store_true",
                        help="read log lines from standard input (source name: stdin)")
    parser.add_argument("--source.journald", dest="journald", action="store_true",
                        help="follow the systemd journal (source name: journal); default units match "
                             "Postfix and Exim on Debian/Ubuntu")
    parser.add_argument("--source.journald.unit", dest="journald_units", action="append", default=[],
                        metavar="UNIT", help="with --source.journald: only this systemd unit (repeatable)")
    parser.add_argument("--source.journald.file", dest="journal_file", metavar="FILE",
                        help="with --source.journald: read this journal file instead of the system journal")
    parser.add_argument("--source.format", dest="fmt", default="auto", metavar="FORMAT",
                        help="format of the --source.* sources: auto (default) or a parser's name")
    parser.add_argument("--source.start-at", dest="start_at", choices=START_AT, default="end",
                        help="where the --source.* sources start with no checkpoint (default: end)")
    parser.add_argument("--source.poll", dest="poll", action="store_true",
                        help="poll the --source.path files instead of using inotify (NFS, some mounts)")
    parser.add_argument("--state.file", dest="state_file", metavar="FILE",
                        help="checkpoint file (offsets and counters); its folder must exist and be writable; "
                             "without it, counts restart at 0")
    # The old spellings: same destinations, no defaults of their own, hidden from --help.
    parser.add_argument("--start-at", dest="start_at", choices=START_AT, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--poll", dest="poll", action="store_true", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--state-file", dest="state_file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--web.listen-address", dest="listen_address", metavar="HOST:PORT",
                        help=f"address to listen on (default {ServeConfig.listen_address})")
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", metavar="PATH",
                        help="path of the metrics (default /metrics)")
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                        help="exporter-toolkit web config: TLS and basic auth")
    parser.add_argument("--metrics.code-cap", dest="code_cap", metavar="N",
                        help=f"distinct code values before the rest fold into code=\"overflow\" "
                             f"(default {ServeConfig.code_cap})")
    parser.add_argument("--metrics.series-cap", dest="series_cap", metavar="N",
                        help=f"distinct series of ndr_status_codes_total before further ones fold into "
                             f"code, subject and provider \"overflow\" (default {ServeConfig.series_cap})")
    parser.add_argument("--log.level", dest="log_level", choices=LOG_LEVELS, help="default info")
    parser.add_argument("--log.format", dest="log_format", choices=LOG_FORMATS, help="default logfmt")
    return parser


def _setting(args: argparse.Namespace, key: str, env: dict[str, str]) -> tuple[Any, str] | None:
    """(value, where it came from) for a flag that has an environment variable, or None if unset."""
    value = getattr(args, key)
    if value is not None:
        return value, FLAG[key]
    if env.get(ENV[key]):
        return env[ENV[key]], ENV[key]
    return None


def flag_sources(args: argparse.Namespace) -> list[SourceConfig]:
    """The sources named on the command line."""
    fmt = check_format(args.fmt, "--source.format")
    sources = [SourceConfig(name=os.path.basename(path.rstrip("/")) or path, kind="file", path=path,
                            format=fmt, start_at=args.start_at, poll=args.poll) for path in args.paths]
    if args.stdin:
        sources.append(SourceConfig(name="stdin", kind="stdin", format=fmt, start_at="beginning"))
    if (args.journald_units or args.journal_file) and not args.journald:
        flag = "--source.journald.unit" if args.journald_units else "--source.journald.file"
        raise ConfigError(flag, "needs --source.journald")
    if args.journald:
        sources.append(SourceConfig(name="journal", kind="journald", format="syslog", start_at=args.start_at,
                                    units=list(args.journald_units), journal_file=args.journal_file))
    names: dict[str, str] = {}
    for source in sources:
        if source.name in names:
            raise ConfigError("--source.path", f"{source.path} and {names[source.name]} would both be named "
                                               f"{source.name!r}; name them in a config file instead")
        names[source.name] = source.path or f"--source.{source.kind}"
    return sources


def build_config(args: argparse.Namespace, env: dict[str, str]) -> tuple[ServeConfig, list[SourceConfig]]:
    """The merged settings, and the sources that came from flags (kept across SIGHUP reloads)."""
    config_file = _setting(args, "config_file", env)
    config = load_config_file(config_file[0]) if config_file else ServeConfig()
    from_flags = flag_sources(args)
    config.sources = config.sources + from_flags
    _check_names(config.sources, len(config.sources) - len(from_flags))
    for key, check in (("listen_address", check_listen_address), ("telemetry_path", check_telemetry_path)):
        found = _setting(args, key, env)
        if found:
            setattr(config, key, check(found[0], found[1]))
    found = _setting(args, "web_config_file", env)
    if found:
        config.web_config_file = found[0]
    found = _setting(args, "state_file", env)
    if found:
        config.state_file = found[0]
    if config.state_file is not None:
        check_state_file(config.state_file, found[1] if found else "state_file")
    for key in ("code_cap", "series_cap"):
        found = _setting(args, key, env)
        if found:
            setattr(config, key, check_code_cap(found[0], found[1]))
    for key, choices in (("log_level", LOG_LEVELS), ("log_format", LOG_FORMATS)):
        found = _setting(args, key, env)
        if found:
            if found[0] not in choices:
                raise ConfigError(found[1], f"unknown value {found[0]!r}; known: {', '.join(choices)}")
            setattr(config, key, found[0])
    if not config.sources:   # last, so that a mistake in another field is named first
        raise ConfigError(*NO_SOURCE)
    return config, from_flags


def _check_names(sources: list[SourceConfig], from_file: int) -> None:
    """The config file's names are checked by its loader; a flag source must not reuse one."""
    check_unique_names(sources[:from_file])
    taken = {source.name for source in sources[:from_file]}
    for source in sources[from_file:]:
        if source.name in taken:
            flag = "--source.path" if source.kind == "file" else f"--source.{source.kind}"
            raise ConfigError(flag, f"{source.name!r} is already the name of a source in the config file")


# --- serve -------------------------------------------------------------------------------------

class StopBeforeStart(BaseException):
    """SIGTERM or SIGINT while the exporter was still starting. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way up can swallow it."""


class Signals:
    """The serve command's signal handlers, installed before anything that can block (reading a
    config file that is a pipe, the state file, the sources' first poll). While starting, a stop
    signal raises StopBeforeStart in the main thread: Python runs a handler between two
    bytecodes and does not retry a system call whose handler raised (PEP 475), so even a read
    that would block forever ends. Once started() is called, a stop signal only sets `stop`
    and the main loop shuts down cleanly (final checkpoint); SIGHUP sets `reload`.

    The main thread sleeps in wait() on a pipe until a signal comes: no idle polling. A signal
    may be taken by any thread; Python's C-level handler then writes a byte to the pipe
    (signal.set_wakeup_fd), which wakes the select() even when the Python handler ran just
    before it, and the handler itself runs in the main thread right after."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self._starting = True
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def install(self) -> "Signals":
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.reload.set())
        return self

    def started(self) -> None:
        self._starting = False

    def wait(self, timeout: float = 60) -> None:
        """Sleep until a signal comes (or timeout seconds pass)."""
        if self.stop.is_set() or self.reload.is_set():
            return
        select.select([self._wake_r], [], [], timeout)
        try:
            os.read(self._wake_r, 512)
        except BlockingIOError:
            pass

    def _on_stop(self, signum: int, _frame: Any) -> None:
        self.stop.set()
        if self._starting:
            self._starting = False   # raise once; a second signal during the unwinding only sets stop
            raise StopBeforeStart(signal.Signals(signum).name)


def serve(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)  # exits 2 with the flag named on a bad flag
    signals = Signals().install()
    try:
        return _serve(args, signals)
    except StopBeforeStart as stopped:
        print(f"{PROG}: stopped by {stopped} while starting", file=sys.stderr)
        return 1 if args.config_check else 0


def _serve(args: argparse.Namespace, signals: Signals) -> int:
    env = dict(os.environ)
    try:
        config, from_flags = build_config(args, env)
        web_config = config.web_config_file
        if args.config_check:
            from exporter.web_config import load_web_config

            if web_config:
                load_web_config(web_config)
    except ConfigError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    if args.config_check:
        names = ", ".join(s.name for s in config.sources)
        state = f"; state file: {config.state_file}" if config.state_file else ""
        print(f"{PROG}: config OK; sources: {names}; listen address: {config.listen_address}{state}")
        return 0

    from exporter import logsetup

    logsetup.setup(config.log_level, config.log_format)
    return run(config, from_flags, _setting(args, "config_file", env), signals)


def run(config: ServeConfig, from_flags: list[SourceConfig], config_file: tuple[str, str] | None,
        signals: Signals) -> int:
    from prometheus_client import CollectorRegistry, ProcessCollector

    from exporter.metrics import MetricsCollector
    from exporter.web import Exposition, make_server

    try:
        server = make_server(config.listen_address, config.telemetry_path, CollectorRegistry(),
                             config.web_config_file)
    except ConfigError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{PROG}: {FLAG['listen_address']} {config.listen_address}: cannot listen: {err.strerror}",
              file=sys.stderr)
        return 1

    from exporter.daemon import Daemon
    from exporter.fdlimit import raise_open_files_limit

    raise_open_files_limit()
    daemon = Daemon(config)
    counts = MetricsCollector(daemon.metrics)
    server.registry.register(counts)
    process = ProcessCollector(registry=server.registry)
    # /metrics: the counts rendered once per publish, the process series once a second (web.py)
    live = CollectorRegistry()
    live.register(process)
    server.exposition = Exposition(counts, live, daemon.metrics.version)
    from exporter.landing import RecentWindow

    # The landing page's recent counts start from what the checkpoint restored, before any reading.
    window = RecentWindow(server.registry).start()
    try:
        daemon.start()
        # Started before the port listens: from the first instant a client can connect, a stop
        # signal is a clean stop (below), not the start's way out.
        signals.started()
    except StopBeforeStart:
        daemon.stop()   # a start cut short: its pipeline thread (if it began) ends with a checkpoint
        window.stop()
        server.server_close()
        raise
    except Exception:
        log.exception("the daemon could not start")
        window.stop()
        server.server_close()
        return 1
    server.server_activate()
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    log.info("listening", extra={"address": config.listen_address, "telemetry_path": config.telemetry_path,
                                 "tls": server.watcher.current().context is not None,
                                 "sources": ",".join(s.name for s in config.sources), "version": __version__})
    while not signals.stop.is_set():
        signals.wait()
        if signals.reload.is_set() and not signals.stop.is_set():
            signals.reload.clear()
            _reload(daemon, from_flags, config_file)
    log.info("stopping")
    server.shutdown()
    server.server_close()
    window.stop()
    daemon.stop()
    log.info("stopped")
    return 0


def _reload(daemon: Any, from_flags: list[SourceConfig], config_file: tuple[str, str] | None) -> None:
    """SIGHUP: read the config file's sources again and hand them to the daemon."""
    if config_file is None:
        log.info("SIGHUP: no config file to reload; sources unchanged")
        return
    try:
        fresh = load_config_file(config_file[0])
        sources = fresh.sources + from_flags
        _check_names(sources, len(fresh.sources))
        if not sources:
            raise ConfigError(*NO_SOURCE)
    except ConfigError as err:
        log.error("SIGHUP: config not reloaded; keeping the current sources", extra={"error": str(err)})
        return
    daemon.reload(sources)
    log.info("SIGHUP: sources reloaded", extra={"sources": ",".join(s.name for s in sources)})


if __name__ == "__main__":
    sys.exit(main())
