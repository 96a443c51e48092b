"""The `ndr-exporter` command as a real process: config check, exit status 2 with the field named,
environment variables, signals (SIGTERM flushes the checkpoint, SIGHUP reloads sources), stdin,
log formats and subcommand dispatch."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from exporter.parsers import FORMATS
from tests.helpers.exporter_process import ExporterProcess, run_exporter, sample, total

Factory = Callable[..., ExporterProcess]
KNOWN_FORMATS = ", ".join(("auto",) + FORMATS)
# Real Postfix lines (fail2ban's test corpus): two rejections with enhanced codes, one line without.
REJECT_1 = (b"Jul 12 07:47:48 saturn postfix/smtpd[8738]: NOQUEUE: reject: RCPT from 1-2-3-4-example.com[1.2.3.4]: "
            b"554 5.7.1 <smtp@example.com>: Relay access denied; from=<john@example.com> to=<smtp@example.org> "
            b"proto=SMTP helo=<198.51.100.17>\n")
REJECT_2 = (b"Aug 13 15:45:46 server postfix/smtpd[13844]: 00ADB3C0899: reject: RCPT from example.com[192.0.2.1]: "
            b"550 5.1.1 <sales@server.com>: Recipient address rejected: User unknown in local recipient table; "
            b"from=<xxxxxx@example.com> to=<sales@server.com> proto=ESMTP helo=<mail.example.com>\n")
NO_CODE = (b"Feb 18 09:45:10 xxx postfix/smtpd[42]: lost connection after CONNECT from "
           b"spammer.example.com[192.0.2.10]\n")


def _config(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_config_check_accepts_a_good_config(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "c.yml", {"sources": [{"name": "mail", "path": str(tmp_path / "*.log")},
                                                   {"name": "pipe", "stdin": True, "format": "syslog"}],
                                       "web": {"listen_address": "127.0.0.1:19999"}})
    result = run_exporter(["--config.file", str(cfg), "--config.check"])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "ndr-exporter: config OK; sources: mail, pipe; listen address: 127.0.0.1:19999\n"


@pytest.mark.parametrize("doc, message", [
    ({"sources": [{"name": "a", "path": "/x"}, {"name": "b", "path": "/y", "format": "foo"}]},
     f"sources[1].format: unknown format 'foo'; known: {KNOWN_FORMATS}"),
    ({"sources": [{"name": "a", "path": "/x"}], "metrics": {"code_cap": -5}},
     "metrics.code_cap: must be a whole number of at least 1, not -5"),
    ({"state_fille": "/tmp/x"},
     "state_fille: unknown field; known: sources, state_file, checkpoint_interval, web, log, metrics"),
])
def test_bad_config_exits_2_naming_the_field(tmp_path: Path, doc: object, message: str) -> None:
    cfg = _config(tmp_path / "c.yml", doc)
    for extra in ([], ["--config.check"]):
        result = run_exporter(["--config.file", str(cfg)] + extra)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", f"ndr-exporter: {message}\n")


@pytest.mark.parametrize("args, env, message", [
    (["--source.format", "postfixish"], {},
     f"ndr-exporter: --source.format: unknown format 'postfixish'; known: {KNOWN_FORMATS}\n"),
    (["--metrics.code-cap", "0"], {}, "ndr-exporter: --metrics.code-cap: must be a whole number of at least 1, not 0\n"),
    (["--web.listen-address", "localhost"], {},
     "ndr-exporter: --web.listen-address: 'localhost' is not host:port (for example :19798 or 127.0.0.1:19798)\n"),
    ([], {"NDR_EXPORTER_CODE_CAP": "many"},
     "ndr-exporter: NDR_EXPORTER_CODE_CAP: must be a whole number of at least 1, not 'many'\n"),
    ([], {"NDR_EXPORTER_LOG_LEVEL": "loud"},
     "ndr-exporter: NDR_EXPORTER_LOG_LEVEL: unknown value 'loud'; known: debug, info, warn, error\n"),
    ([], {"NDR_EXPORTER_CONFIG_FILE": "/nonexistent/ndr.yml"},
     "ndr-exporter: --config.file: cannot read /nonexistent/ndr.yml: No such file or directory\n"),
    (["--source.path", "/a/mail.log", "--source.path", "/b/mail.log"], {},
     "ndr-exporter: --source.path: /b/mail.log and /a/mail.log would both be named 'mail.log'; "
     "name them in a config file instead\n"),
    (["--source.journald.unit", "postfix.service"], {},
     "ndr-exporter: --source.journald.unit: needs --source.journald\n"),
    (["--source.journald.file", "/var/log/journal/x.journal"], {},
     "ndr-exporter: --source.journald.file: needs --source.journald\n"),
])
def test_bad_flag_or_environment_exits_2(args: list[str], env: dict[str, str], message: str) -> None:
    result = run_exporter(args + ["--config.check"], env=env)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_argparse_errors_exit_2_naming_the_flag() -> None:
    result = run_exporter(["--log.level", "loud"])
    assert result.returncode == 2
    assert result.stderr.endswith(
        "ndr-exporter: error: argument --log.level: invalid choice: 'loud' (choose from 'debug', 'info', "
        "'warn', 'error')\n")
    result = run_exporter(["--no-such-flag"])
    assert result.returncode == 2
    assert result.stderr.endswith("ndr-exporter: error: unknown flag '--no-such-flag'\n")


def test_environment_stands_in_for_flags_and_flags_win(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "c.yml", {"web": {"listen_address": ":1111"},
                                       "sources": [{"name": "mail", "path": str(tmp_path / "mail.log")}]})
    env = {"NDR_EXPORTER_CONFIG_FILE": str(cfg)}
    assert run_exporter(["--config.check"], env=env).stdout.endswith("listen address: :1111\n")
    env["NDR_EXPORTER_LISTEN_ADDRESS"] = "127.0.0.1:2222"
    assert run_exporter(["--config.check"], env=env).stdout.endswith("listen address: 127.0.0.1:2222\n")
    result = run_exporter(["--config.check", "--web.listen-address", "[::1]:3333"], env=env)
    assert result.stdout.endswith("listen address: [::1]:3333\n")


def test_sigterm_exits_0_and_the_checkpoint_carries_the_counts(tmp_path: Path, exporter_factory: Factory) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes(b"")
    state = tmp_path / "state" / "checkpoint.json"
    state.parent.mkdir()
    args = ["--source.path", str(log), "--state-file", str(state)]
    exp = exporter_factory(args)
    with open(log, "ab") as f:
        f.write(REJECT_1 + NO_CODE + REJECT_2)
    exp.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 2)
    assert exp.stop(signal.SIGTERM) == 0
    assert state.is_file()
    json.loads(state.read_text())  # written whole, atomically: it parses

    # a restart continues from the checkpoint: same counts, nothing read twice, then new lines add
    again = exporter_factory(args)
    samples = again.metrics()
    assert total(samples, "ndr_status_codes_total") == 2
    assert sample(samples, "ndr_exporter_lines_total", source="mail.log", result="matched") == 2
    assert sample(samples, "ndr_exporter_lines_total", source="mail.log", result="ignored") == 1
    with open(log, "ab") as f:
        f.write(REJECT_2)
    samples = again.wait_for_metrics(lambda s: total(s, "ndr_status_codes_total") == 3)
    assert total(samples, "ndr_status_codes_total", code="5.1.1") == 2
    assert again.stop(signal.SIGINT) == 0


def test_sighup_reloads_the_config_sources(tmp_path: Path, exporter_factory: Factory) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    first.write_bytes(b"")
    second.write_bytes(b"")
    cfg = _config(tmp_path / "c.yml", {"sources": [{"name": "first", "path": str(first)}]})
    exp = exporter_factory(["--config.file", str(cfg)])
    assert sample(exp.metrics(), "ndr_exporter_read_bytes_total", source="second") is None
    _config(cfg, {"sources": [{"name": "first", "path": str(first)}, {"name": "second", "path": str(second)}]})
    exp.signal(signal.SIGHUP)
    exp.wait_for_metrics(lambda s: sample(s, "ndr_exporter_read_bytes_total", source="second") == 0)
    with open(second, "ab") as f:
        f.write(REJECT_1)
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="second", result="matched") == 1)
    assert total(samples, "ndr_status_codes_total", code="5.7.1") == 1
    # a broken config on SIGHUP is logged and the running sources stay
    (cfg).write_text("sources: [{name: first, path: /x, format: nope}]\n")
    exp.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "config not reloaded" not in exp.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "sources[0].format: unknown format 'nope'" in exp.output()
    assert exp.proc is not None and exp.proc.poll() is None


def test_stdin_source(exporter_factory: Factory) -> None:
    exp = exporter_factory(["--source.stdin", "--source.format", "syslog"], stdin=subprocess.PIPE)
    assert exp.proc is not None and exp.proc.stdin is not None
    exp.proc.stdin.write(REJECT_1 + REJECT_2 + NO_CODE)
    exp.proc.stdin.flush()
    samples = exp.wait_for_metrics(
        lambda s: sample(s, "ndr_exporter_lines_total", source="stdin", result="ignored") == 1)
    assert total(samples, "ndr_status_codes_total", code="5.7.1", outcome="rejected") == 1
    assert total(samples, "ndr_status_codes_total", code="5.1.1", outcome="rejected") == 1


def test_json_logs(tmp_path: Path, exporter_factory: Factory) -> None:
    log = tmp_path / "mail.log"
    log.touch()
    exp = exporter_factory(["--source.path", str(log), "--log.format", "json"])
    assert exp.stop() == 0
    records = [json.loads(line) for line in exp.output().splitlines() if line.strip()]
    listening = [r for r in records if r["msg"] == "listening"]
    assert len(listening) == 1
    assert listening[0]["level"] == "info" and listening[0]["address"] == f"127.0.0.1:{exp.port}"
    assert records[-1]["msg"] == "stopped"


def test_subcommands_are_dispatched() -> None:
    result = run_exporter(["explain", "--help"])
    assert result.returncode == 0 and result.stdout.startswith("usage:")
    assert run_exporter(["--version"]).stdout == "ndr-exporter 0.1.0\n"


def test_port_in_use_exits_1_naming_the_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        result = run_exporter(["--source.path", str(tmp_path / "mail.log"), "--web.listen-address", address])
    assert result.returncode == 1
    assert result.stderr == f"ndr-exporter: --web.listen-address {address}: cannot listen: Address already in use\n"


def test_logfmt_logs(tmp_path: Path, exporter_factory: Factory) -> None:
    import re

    log = tmp_path / "mail.log"
    log.touch()
    exp = exporter_factory(["--source.path", str(log), "--log.level", "warn"])
    assert exp.stop() == 0
    assert exp.output() == ""  # info records are below warn
    cfg = _config(tmp_path / "c.yml", {"sources": [{"name": "my mail", "path": str(log)}]})
    exp = exporter_factory(["--config.file", str(cfg)])
    exp.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "SIGHUP: sources reloaded" not in exp.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exp.stop() == 0
    lines = exp.output().splitlines()
    assert re.fullmatch(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info logger=ndr_exporter\.cli msg=listening '
                        rf'address=127\.0\.0\.1:{exp.port} telemetry_path=/metrics tls=False sources="my mail" '
                        r'version=0\.1\.0', next(line for line in lines if "msg=listening" in line))
    assert any('msg="SIGHUP: sources reloaded" sources="my mail"' in line for line in lines)


def test_flag_source_may_not_reuse_a_config_file_name(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "c.yml", {"sources": [{"name": "mail.log", "path": "/srv/a/mail.log"}]})
    result = run_exporter(["--config.file", str(cfg), "--source.path", "/srv/b/mail.log", "--config.check"])
    assert (result.returncode, result.stderr) == \
        (2, "ndr-exporter: --source.path: 'mail.log' is already the name of a source in the config file\n")
