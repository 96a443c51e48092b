"""The real exporter process over HTTP: landing page, TLS, client certificates, basic auth,
web config reloads, and refusal of a bad web config at start (exit 2, field named)."""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path
from typing import Callable

import bcrypt
import pytest
import yaml

from tests.helpers.exporter_process import ExporterProcess, http_get, run_exporter

Factory = Callable[..., ExporterProcess]


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def _write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _base_args(tmp_path: Path) -> list[str]:
    log = tmp_path / "mail.log"
    log.touch()
    return ["--source.path", str(log), "--log.level", "debug"]


def _client_context(pki: dict[str, Path], cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if cert:
        ctx.load_cert_chain(str(pki[f"{cert}_cert"]), str(pki[f"{cert}_key"]))
    return ctx


def test_landing_page_links_to_the_telemetry_path(tmp_path: Path, exporter_factory: Factory) -> None:
    exp = exporter_factory(_base_args(tmp_path) + ["--web.telemetry-path", "/probe/metrics"])
    status, headers, body = exp.get("/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<a href="/probe/metrics">Metrics</a>' in body.decode()
    assert "ndr_exporter_build_info" in exp.scrape("/probe/metrics")
    assert exp.get("/metrics")[0] == 404
    status, headers, _ = exp.get("/probe/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"


def test_tls_serves_https_and_refuses_plain_http(tmp_path: Path, exporter_factory: Factory,
                                                 pki: dict[str, Path]) -> None:
    web = _write(tmp_path / "web.yml", {"tls_server_config": {
        "cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]), "min_version": "TLS12"}})
    exp = exporter_factory(_base_args(tmp_path) + ["--web.config.file", str(web)],
                           scheme="https", ssl_context=_client_context(pki))
    assert "ndr_exporter_build_info" in exp.scrape()
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{exp.port}/metrics", timeout=3)
    # a TLS 1.2-only client is welcome at min_version TLS12, a TLS 1.1 one would not be
    ctx = _client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert exp.get(context=ctx)[0] == 200


def test_client_certificate_required_and_verified(tmp_path: Path, exporter_factory: Factory,
                                                  pki: dict[str, Path]) -> None:
    web = _write(tmp_path / "web.yml", {"tls_server_config": {
        "cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]),
        "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(pki["ca"])}})
    exp = exporter_factory(_base_args(tmp_path) + ["--web.config.file", str(web)],
                           scheme="https", ssl_context=_client_context(pki, "client"))
    assert exp.get()[0] == 200
    with pytest.raises(OSError):
        exp.get(context=_client_context(pki))          # no client certificate
    with pytest.raises(OSError):
        exp.get(context=_client_context(pki, "rogue"))  # signed by a CA the exporter does not trust
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "CERTIFICATE_VERIFY_FAILED" not in exp.output():
        time.sleep(0.1)
    log = exp.output()
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in log
    assert "CERTIFICATE_VERIFY_FAILED" in log


def test_client_allowed_sans(tmp_path: Path, exporter_factory: Factory, pki: dict[str, Path]) -> None:
    tls = {"cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]),
           "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(pki["ca"]),
           "client_allowed_sans": ["other.example"]}
    web = _write(tmp_path / "web.yml", {"tls_server_config": tls})
    exp = exporter_factory(_base_args(tmp_path) + ["--web.config.file", str(web)],
                           scheme="https", ssl_context=_client_context(pki, "client"))
    with pytest.raises(OSError):
        exp.get()
    tls["client_allowed_sans"] = ["prometheus.example"]
    _write(web, {"tls_server_config": tls})
    assert exp.get()[0] == 200


def test_basic_auth_accepts_and_refuses(tmp_path: Path, exporter_factory: Factory) -> None:
    web = _write(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": _hash("s3cret pass")}})
    exp = exporter_factory(_base_args(tmp_path) + ["--web.config.file", str(web)])
    assert exp.get(auth=("prometheus", "s3cret pass"))[0] == 200
    assert exp.get(auth=("prometheus", "s3cret pass"))[0] == 200  # the cached path
    status, headers, body = exp.get()
    assert (status, body) == (401, b"Unauthorized\n")
    assert headers["WWW-Authenticate"] == 'Basic realm="ndr-exporter", charset="UTF-8"'
    assert exp.get(auth=("prometheus", "wrong"))[0] == 401
    assert exp.get(auth=("nobody", "s3cret pass"))[0] == 401
    assert exp.get("/", auth=("prometheus", "wrong"))[0] == 401
    assert exp.get(headers={"Authorization": "Basic !!!not base64"})[0] == 401


def test_unknown_users_and_long_passwords_get_the_same_401(tmp_path: Path, exporter_factory: Factory) -> None:
    password = "p" * 72
    web = _write(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": _hash(password)}})
    exp = exporter_factory(_base_args(tmp_path) + ["--web.config.file", str(web)])
    replies = []
    for auth in (("nobody", "x" * 73), ("nobody", "x"), ("prometheus", "x" * 73), ("prometheus", password + "extra"),
                 ("prometheus", "wrong")):
        status, headers, body = exp.get(auth=auth)
        replies.append((status, headers["WWW-Authenticate"], body))
    assert replies == [(401, 'Basic realm="ndr-exporter", charset="UTF-8"', b"Unauthorized\n")] * 5
    # bcrypt reads 72 bytes: a longer password that starts with the right 72 is still wrong
    assert exp.get(auth=("prometheus", password))[0] == 200
    assert exp.get(auth=("prometheus", password + "extra"))[0] == 401
    assert exp.proc is not None and exp.proc.poll() is None


def test_web_config_changes_apply_without_restart(tmp_path: Path, exporter_factory: Factory) -> None:
    web = _write(tmp_path / "web.yml", {"basic_auth_users": {"alice": _hash("one")}})
    exp = exporter_factory(_base_args(tmp_path) + ["--web.config.file", str(web)])
    assert exp.get(auth=("bob", "two"))[0] == 401
    _write(web, {"basic_auth_users": {"alice": _hash("one"), "bob": _hash("two")},
                 "http_server_config": {"headers": {"X-Frame-Options": "deny"}}})
    status, headers, _ = exp.get(auth=("bob", "two"))
    assert status == 200 and headers["X-Frame-Options"] == "deny"
    # a broken edit is refused loudly, and the exporter keeps running until it is fixed
    web.write_text("basic_auth_users: [not, a, mapping]\n")
    assert exp.get(auth=("bob", "two"))[0] == 500
    assert "web config not reloaded" in exp.output()
    # turning auth off is a loss of protection: refused until the file has settled for a second
    _write(web, {})
    status, headers, body = exp.get()
    assert (status, headers["Retry-After"], body) == (503, "1", b"web config is changing; retry in a moment\n")
    assert "web config asks for less protection" in exp.output()
    time.sleep(1.2)
    assert exp.get()[0] == 200
    assert "web config reloaded with less protection" in exp.output()
    assert exp.proc is not None and exp.proc.poll() is None


@pytest.mark.parametrize("doc, field_message", [
    ({"tls_server_config": {"cert_file": "{server_cert}", "key_file": "{server_key}",
                            "client_auth_type": "RequireClientCert"}},
     "tls_server_config.client_auth_type: unknown value 'RequireClientCert'; known: NoClientCert, "
     "VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
    ({"tls_server_config": {"cert_file": "{server_cert}", "key_file": "{server_key}",
                            "client_auth_type": "RequireAndVerifyClientCert"}},
     "tls_server_config.client_ca_file: missing: client_auth_type RequireAndVerifyClientCert needs a CA "
     "to verify against"),
    ({"tls_server_config": {"cert_file": "{dir}/missing.pem", "key_file": "{server_key}"}},
     "tls_server_config.cert_file: {dir}/missing.pem: no such file"),
    ({"tls_server_config": {"cert_file": "{server_cert}", "key_file": "{client_key}"}},
     "tls_server_config.cert_file: cannot load {server_cert} with key {client_key}: KEY_VALUES_MISMATCH"),
    ({"tls_server_config": {"cert_file": "{server_cert}", "key_file": "{server_key}", "min_version": "TLS14"}},
     "tls_server_config.min_version: unknown value 'TLS14'; known: TLS10, TLS11, TLS12, TLS13"),
    ({"tls_server_config": {"cert_file": "{server_cert}"}},
     "tls_server_config.key_file: missing (both cert_file and key_file are needed for TLS)"),
    ({"basic_auth_users": {"alice": "plaintext"}},
     "basic_auth_users.alice: not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')"),
    ({"basic_auth_user": {"alice": "x"}},
     "basic_auth_user: unknown field; known: tls_server_config, http_server_config, basic_auth_users, rate_limit"),
])
def test_bad_web_config_exits_2_naming_the_field(tmp_path: Path, pki: dict[str, Path], doc: dict,
                                                  field_message: str) -> None:
    values = {k: str(v) for k, v in pki.items()} | {"dir": str(tmp_path)}
    text = yaml.safe_dump(doc)
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
        field_message = field_message.replace("{" + key + "}", value)
    web = tmp_path / "web.yml"
    web.write_text(text)
    log = tmp_path / "mail.log"
    log.touch()
    result = run_exporter(["--source.path", str(log), "--web.config.file", str(web)])
    assert result.returncode == 2
    assert result.stderr == f"ndr-exporter: web config {web}: {field_message}\n"
    check = run_exporter(["--source.path", str(log), "--web.config.file", str(web), "--config.check"])
    assert (check.returncode, check.stderr) == (2, result.stderr)


def test_listens_on_ipv4_and_ipv6_for_a_bare_port(tmp_path: Path, exporter_factory: Factory) -> None:
    import socket

    from tests.helpers.exporter_process import free_port

    port = free_port()
    exp = exporter_factory(_base_args(tmp_path) + ["--web.listen-address", f":{port}"])
    assert exp.get()[0] == 200
    if socket.has_ipv6:
        try:
            status = http_get(f"http://[::1]:{port}/metrics")[0]
        except OSError:
            pytest.skip("no IPv6 loopback here")
        assert status == 200


def test_garbage_requests_do_not_stop_the_server(tmp_path: Path, exporter_factory: Factory) -> None:
    import socket

    exp = exporter_factory(_base_args(tmp_path))
    replies = []
    for payload in (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
                    b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"):
        with socket.create_connection(("127.0.0.1", exp.port), timeout=5) as s:
            s.sendall(payload)
            reply = b""
            while b"Error code" not in reply and len(reply) < 4096:
                more = s.recv(4096)
                if not more:
                    break
                reply += more
            replies.append(re.search(rb"Error code: (\d+)", reply).group(1))  # type: ignore[union-attr]
    assert replies == [b"400", b"414", b"501", b"431"]
    assert exp.get()[0] == 200 and exp.proc is not None and exp.proc.poll() is None
