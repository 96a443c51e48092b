"""Settings for the daemon: what to follow and how to serve (YAML file, environment, flags).

The dataclasses are the contract that the sources and the daemon read. This module
also turns a YAML config file into them and checks every field, so that a mistake is
refused at start with a message that names the field (`sources[1].format: ...`); the
CLI turns a ConfigError into exit status 2. Flags and environment variables are
merged on top by exporter.cli.
"""

from __future__ import annotations

import os
import select
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any


# 9798, the first placeholder, belongs to the Speedtest exporter in Prometheus' "default port
# allocations" list, and that list's 9100-9999 range is used up; so the default sits outside it,
# and below the ephemeral ranges (Linux 32768-60999, IANA 49152-65535) where an outgoing
# connection could hold it at a restart (the old default, 39798, was inside Linux's; docs/deployment.md).
DEFAULT_PORT = 19798
DEFAULT_CODE_CAP = 500
DEFAULT_SERIES_CAP = 2000   # metrics.DEFAULT_SERIES_CAP: series of ndr_status_codes_total before folding
PIPE_WAIT_SECONDS = 0.2   # the longest a stop signal waits while a config pipe has not been written
START_AT = ("end", "beginning")
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")


class ConfigError(ValueError):
    """A setting that cannot be used; str() names the field and says what is wrong."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass
class SourceConfig:
    name: str                          # the `source` label value; from config, never from a log
    kind: str = "file"                 # file | journald | stdin
    path: str | None = None            # file: a path or a glob (new matching files are picked up)
    format: str = "auto"               # auto | one of exporter.parsers.FORMATS
    start_at: str = "end"              # end | beginning: where to start with no checkpoint
    poll: bool = False                 # poll instead of inotify (NFS, some container mounts)
    poll_interval: float = 1.0         # seconds between polls in polling mode
    units: list[str] = field(default_factory=list)        # journald: systemd units (-u)
    identifiers: list[str] = field(default_factory=list)  # journald: SYSLOG_IDENTIFIER (-t)
    journal_file: str | None = None    # journald: read this journal file (--file) instead of the system journal
    max_line_bytes: int = 64 * 1024    # longer lines are cut, counted as oversized and skipped


@dataclass
class ServeConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    listen_address: str = f":{DEFAULT_PORT}"
    telemetry_path: str = "/metrics"
    web_config_file: str | None = None
    state_file: str | None = None      # checkpoint file; None: no checkpoints
    checkpoint_interval: float = 1.0
    code_cap: int = DEFAULT_CODE_CAP
    series_cap: int = DEFAULT_SERIES_CAP
    log_level: str = "info"
    log_format: str = "logfmt"


# --- the YAML file ---------------------------------------------------------------------------

SOURCE_KEYS = ("name", "path", "journald", "stdin", "format", "start_at", "poll", "poll_interval",
               "max_line_bytes")
JOURNALD_KEYS = ("units", "identifiers", "file")
TOP_KEYS = ("sources", "state_file", "checkpoint_interval", "web", "log", "metrics")
WEB_KEYS = ("listen_address", "telemetry_path", "config_file")
LOG_KEYS = ("level", "format")
METRICS_KEYS = ("code_cap", "series_cap")


def _read_waiting_for_signals(path: str) -> bytes:
    """The whole file at path. A pipe (`--config.file <(...)`, a FIFO) is waited on in select()
    with a timeout, never in a blocking read(): a stop signal that comes just before a read()
    begins is taken by Python's C handler, and the read() would then wait for data that may
    never come before the handler's Python part could run (cli.Signals raises StopBeforeStart
    there); select() returns within PIPE_WAIT_SECONDS, and the handler runs."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read()
        # Linux reports a FIFO readable at EOF only once a writer has come and gone, so this
        # waits for a writer as the blocking open() did.
        parts: list[bytes] = []
        while True:
            readable, _, _ = select.select([fd], [], [], PIPE_WAIT_SECONDS)
            if not readable:
                continue
            try:
                part = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not part:
                return b"".join(parts)
            parts.append(part)
    finally:
        os.close(fd)


def load_config_file(path: str) -> ServeConfig:
    """Read and check a YAML config file; ConfigError names the field that is wrong."""
    try:
        text = _read_waiting_for_signals(path)
    except OSError as err:
        raise ConfigError("--config.file", f"cannot read {path}: {err.strerror}") from None
    import yaml   # here: a daemon configured by flags alone never loads it (1.6 MB resident)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(path, f"not valid YAML{where}: {problem}") from None
    return config_from_dict({} if data is None else data)


def config_from_dict(data: Any) -> ServeConfig:
    """Build a ServeConfig from the parsed YAML document."""
    top = _mapping(data, "config file", TOP_KEYS)
    config = ServeConfig()
    sources = top.get("sources", [])
    if sources is None:
        sources = []
    if not isinstance(sources, list):
        raise ConfigError("sources", f"must be a list, not {_kind(sources)}")
    config.sources = [source_from_dict(item, f"sources[{i}]") for i, item in enumerate(sources)]
    check_unique_names(config.sources)
    if "state_file" in top:
        config.state_file = _opt_str(top["state_file"], "state_file")
    if "checkpoint_interval" in top:
        config.checkpoint_interval = _positive_number(top["checkpoint_interval"], "checkpoint_interval")
    web = _mapping(top.get("web") or {}, "web", WEB_KEYS)
    if "listen_address" in web:
        config.listen_address = check_listen_address(_str(web["listen_address"], "web.listen_address"),
                                                     "web.listen_address")
    if "telemetry_path" in web:
        config.telemetry_path = check_telemetry_path(_str(web["telemetry_path"], "web.telemetry_path"),
                                                     "web.telemetry_path")
    if "config_file" in web:
        config.web_config_file = _opt_str(web["config_file"], "web.config_file")
    log = _mapping(top.get("log") or {}, "log", LOG_KEYS)
    if "level" in log:
        config.log_level = check_choice(_str(log["level"], "log.level"), LOG_LEVELS, "log.level")
    if "format" in log:
        config.log_format = check_choice(_str(log["format"], "log.format"), LOG_FORMATS, "log.format")
    metrics = _mapping(top.get("metrics") or {}, "metrics", METRICS_KEYS)
    if "code_cap" in metrics:
        config.code_cap = check_code_cap(metrics["code_cap"], "metrics.code_cap")
    if "series_cap" in metrics:
        config.series_cap = check_code_cap(metrics["series_cap"], "metrics.series_cap")
    return config


def source_from_dict(data: Any, where: str) -> SourceConfig:
    """One entry of `sources:`; exactly one of path, journald or stdin says what to read."""
    item = _mapping(data, where, SOURCE_KEYS)
    kinds = [k for k in ("path", "journald", "stdin") if item.get(k) not in (None, False)]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        raise ConfigError(where, f"needs exactly one of path, journald or stdin (found: {found})")
    if "name" not in item:
        raise ConfigError(f"{where}.name", "missing (the name becomes the `source` label)")
    source = SourceConfig(name=check_source_name(item["name"], f"{where}.name"))
    if kinds[0] == "path":
        source.kind = "file"
        source.path = _str(item["path"], f"{where}.path")
        if not source.path:
            raise ConfigError(f"{where}.path", "must not be empty")
    elif kinds[0] == "stdin":
        source.kind = "stdin"
        if item["stdin"] is not True:
            raise ConfigError(f"{where}.stdin", f"must be true, not {item['stdin']!r}")
    else:
        source.kind = "journald"
        journald = _mapping(item["journald"] if item["journald"] is not True else {},
                            f"{where}.journald", JOURNALD_KEYS)
        source.units = _str_list(journald.get("units", []), f"{where}.journald.units")
        source.identifiers = _str_list(journald.get("identifiers", []), f"{where}.journald.identifiers")
        if "file" in journald:
            source.journal_file = _opt_str(journald["file"], f"{where}.journald.file")
    if "format" in item:
        source.format = check_format(_str(item["format"], f"{where}.format"), f"{where}.format")
    if "start_at" in item:
        source.start_at = check_choice(_str(item["start_at"], f"{where}.start_at"), START_AT,
                                       f"{where}.start_at")
    if "poll" in item:
        if not isinstance(item["poll"], bool):
            raise ConfigError(f"{where}.poll", f"must be true or false, not {item['poll']!r}")
        source.poll = item["poll"]
    if "poll_interval" in item:
        source.poll_interval = _positive_number(item["poll_interval"], f"{where}.poll_interval")
    if "max_line_bytes" in item:
        value = item["max_line_bytes"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 256:
            raise ConfigError(f"{where}.max_line_bytes", f"must be a whole number of at least 256, not {value!r}")
        source.max_line_bytes = value
    return source


# --- checks shared with the CLI --------------------------------------------------------------

def known_formats() -> tuple[str, ...]:
    from exporter.parsers import FORMATS

    return ("auto",) + tuple(FORMATS)


def check_format(value: str, where: str) -> str:
    known = known_formats()
    if value not in known:
        raise ConfigError(where, f"unknown format {value!r}; known: {', '.join(known)}")
    return value


def check_choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConfigError(where, f"unknown value {value!r}; known: {', '.join(choices)}")
    return value


def check_source_name(value: Any, where: str) -> str:
    """A source name is a label value: short, printable, chosen by the operator."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, f"must be a non-empty string, not {value!r}")
    if len(value) > 128 or not value.isprintable():
        raise ConfigError(where, "must be at most 128 printable characters")
    return value


def check_unique_names(sources: list[SourceConfig]) -> None:
    seen: dict[str, int] = {}
    for i, source in enumerate(sources):
        if source.name in seen:
            raise ConfigError(f"sources[{i}].name",
                              f"{source.name!r} is already the name of sources[{seen[source.name]}]")
        seen[source.name] = i


def check_listen_address(value: str, where: str) -> str:
    """host:port, :port or [v6]:port, with a port from 0 to 65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(where, f"{value!r} is not host:port (for example :{DEFAULT_PORT} or 127.0.0.1:{DEFAULT_PORT})")
    if host.startswith("[") != host.endswith("]"):
        raise ConfigError(where, f"{value!r}: an IPv6 address goes in brackets, e.g. [::1]:{DEFAULT_PORT}")
    return value


def split_listen_address(value: str) -> tuple[str, int]:
    """(host, port) from a checked listen address; an empty host means every address."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def check_telemetry_path(value: str, where: str) -> str:
    if not value.startswith("/") or value == "/" or any(c in value for c in "?# "):
        raise ConfigError(where, f"{value!r} must be a path starting with / (not / itself), e.g. /metrics")
    return value


def check_code_cap(value: Any, where: str) -> int:
    """A cap (code_cap, series_cap): a whole number of at least 1, from YAML or from text."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(where, f"must be a whole number of at least 1, not {value!r}")
    return value


def check_state_file(path: str, where: str) -> None:
    """The checkpoint's folder must exist and take a new file (the checkpoint is written to a
    temporary file there, then renamed over the old one); the path itself, when it exists,
    must be a regular file: a folder is refused, and so is a FIFO, a socket or a device, which
    reading the checkpoint could block on or misread. Only stat() is used here: nothing opens it."""
    if not path:
        raise ConfigError(where, "must not be empty")
    if os.path.isdir(path):
        raise ConfigError(where, f"{path} is a folder; give a file in it, e.g. {os.path.join(path, 'checkpoint.json')}")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConfigError(where, f"{folder} is not a folder")
    if not os.path.isdir(folder):
        raise ConfigError(where, f"the folder {folder} does not exist; create it, writable by the exporter's user")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None   # no checkpoint yet (or a dangling link the first write replaces)
    except OSError as err:
        raise ConfigError(where, f"cannot look at {path}: {err.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(where, f"{path} is {file_kind(mode)}, not a regular file; the checkpoint must be a "
                                 "regular file (or not exist yet)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ndr-checkpoint-check-", dir=folder)
    except OSError as err:
        raise ConfigError(where, f"cannot write in the folder {folder}: {err.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def file_kind(mode: int) -> str:
    """What a stat() mode says a path is, in words, for an error message."""
    for test, words in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return words
    return "not a regular file"


def check_readable_file(path: str, where: str) -> None:
    if not os.path.isfile(path):
        raise ConfigError(where, f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise ConfigError(where, f"{path}: not readable")


# --- small typed readers -----------------------------------------------------------------------

def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)


def _mapping(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where, f"must be a mapping, not {_kind(value)}")
    for key in value:
        if key not in keys:
            prefix = "" if where == "config file" else where + "."
            raise ConfigError(f"{prefix}{key}", f"unknown field; known: {', '.join(keys)}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, f"must be a string, not {_kind(value)}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(where, "must be a list of strings")
    return list(value)


def _positive_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(where, f"must be a number of seconds above 0, not {value!r}")
    return float(value)
