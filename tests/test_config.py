"""Config file loading and checking (exporter.config): every mistake is refused with its field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import (
    DEFAULT_PORT, ConfigError, ServeConfig, SourceConfig, config_from_dict, load_config_file,
)
from exporter.parsers import FORMATS

KNOWN_FORMATS = ", ".join(("auto",) + FORMATS)

FULL = """
sources:
  - name: mail
    path: /var/log/mail.log*
    format: syslog
    start_at: beginning
    poll: true
    poll_interval: 2.5
  - name: journal
    journald:
      units: [postfix.service, postfix@-.service]
      identifiers: postfix/smtp
      file: /var/log/journal/x.journal
  - name: pipe
    stdin: true
    max_line_bytes: 4096
state_file: /var/lib/ndr-exporter/checkpoint.json
checkpoint_interval: 2
web:
  listen_address: "127.0.0.1:9999"
  telemetry_path: /m
  config_file: /etc/ndr-exporter/web.yml
log:
  level: debug
  format: json
metrics:
  code_cap: 50
"""


def test_full_file_is_read_into_the_dataclasses(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(FULL)
    config = load_config_file(str(path))
    assert config == ServeConfig(
        sources=[
            SourceConfig(name="mail", kind="file", path="/var/log/mail.log*", format="syslog",
                         start_at="beginning", poll=True, poll_interval=2.5),
            SourceConfig(name="journal", kind="journald", units=["postfix.service", "postfix@-.service"],
                         identifiers=["postfix/smtp"], journal_file="/var/log/journal/x.journal"),
            SourceConfig(name="pipe", kind="stdin", max_line_bytes=4096),
        ],
        listen_address="127.0.0.1:9999", telemetry_path="/m", web_config_file="/etc/ndr-exporter/web.yml",
        state_file="/var/lib/ndr-exporter/checkpoint.json", checkpoint_interval=2.0, code_cap=50,
        log_level="debug", log_format="json")


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("# nothing yet\n")
    config = load_config_file(str(path))
    assert config == ServeConfig()
    assert config.listen_address == f":{DEFAULT_PORT}" == ":19798"
    assert config.code_cap == 500


@pytest.mark.parametrize("doc, message", [
    ({"sources": [{"name": "a", "path": "/x"}, {"name": "b", "path": "/y", "format": "foo"}]},
     f"sources[1].format: unknown format 'foo'; known: {KNOWN_FORMATS}"),
    ({"sources": [{"name": "a", "path": "/x", "pth": "/y"}]},
     "sources[0].pth: unknown field; known: name, path, journald, stdin, format, start_at, poll, "
     "poll_interval, max_line_bytes"),
    ({"sources": [{"name": "a"}]},
     "sources[0]: needs exactly one of path, journald or stdin (found: none)"),
    ({"sources": [{"name": "a", "path": "/x", "stdin": True}]},
     "sources[0]: needs exactly one of path, journald or stdin (found: path, stdin)"),
    ({"sources": [{"path": "/x"}]},
     "sources[0].name: missing (the name becomes the `source` label)"),
    ({"sources": [{"name": "a", "path": "/x"}, {"name": "a", "path": "/y"}]},
     "sources[1].name: 'a' is already the name of sources[0]"),
    ({"sources": [{"name": "a", "path": "/x", "start_at": "middle"}]},
     "sources[0].start_at: unknown value 'middle'; known: end, beginning"),
    ({"sources": [{"name": "a", "path": "/x", "poll": "yes please"}]},
     "sources[0].poll: must be true or false, not 'yes please'"),
    ({"sources": [{"name": "a", "path": "/x", "poll_interval": 0}]},
     "sources[0].poll_interval: must be a number of seconds above 0, not 0"),
    ({"sources": [{"name": "a", "journald": {"unit": "postfix"}}]},
     "sources[0].journald.unit: unknown field; known: units, identifiers, file"),
    ({"sources": {"name": "a"}}, "sources: must be a list, not a mapping"),
    ({"web": {"listen_address": "9798"}},
     "web.listen_address: '9798' is not host:port (for example :19798 or 127.0.0.1:19798)"),
    ({"web": {"listen_address": ":70000"}},
     "web.listen_address: ':70000' is not host:port (for example :19798 or 127.0.0.1:19798)"),
    ({"web": {"telemetry_path": "metrics"}},
     "web.telemetry_path: 'metrics' must be a path starting with / (not / itself), e.g. /metrics"),
    ({"log": {"level": "verbose"}}, "log.level: unknown value 'verbose'; known: debug, info, warn, error"),
    ({"log": {"format": "xml"}}, "log.format: unknown value 'xml'; known: logfmt, json"),
    ({"metrics": {"code_cap": 0}}, "metrics.code_cap: must be a whole number of at least 1, not 0"),
    ({"metrics": {"cap": 5}}, "metrics.cap: unknown field; known: code_cap, series_cap"),
    ({"sauces": []}, "sauces: unknown field; known: sources, state_file, checkpoint_interval, web, log, metrics"),
    (["a", "b"], "config file: must be a mapping, not a list"),
])
def test_mistakes_name_their_field(doc: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc)
    assert str(err.value) == message


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("sources:\n  - name: a\n    path: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config_file(str(path))
    assert str(err.value).startswith(f"{path}: not valid YAML at line 4, column 1:")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_file(str(tmp_path / "nope.yml"))
    assert str(err.value) == f"--config.file: cannot read {tmp_path / 'nope.yml'}: No such file or directory"
