"""Settings for the daemon: what to follow and how to serve (flags, YAML file, environment).

PLACEHOLDER for loading and validation (the service issue); the dataclasses are the
contract that the sources and the daemon read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PORT = 9798  # see README: not taken in Prometheus' default port allocations


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
    code_cap: int = 500
    log_level: str = "info"
    log_format: str = "logfmt"
