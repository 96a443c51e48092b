"""The HTTP end of the pipeline: /metrics, a landing page, and exporter-toolkit web config.

Serves the metrics stage's registry with prometheus_client's own exposition
(choose_encoder), on the standard library's ThreadingHTTPServer. `--web.config.file`
takes the file format of Prometheus' exporter-toolkit: TLS (with client certificates)
and basic auth with bcrypt hashes. The file, and the certificate files it names, are
checked for changes (a stat per connection) and re-read when they change, so a renewed
certificate or a new user applies without a restart. A file that cannot be used is
refused at start with the field named; if it later changes into something unusable,
requests fail (TLS handshakes are refused, plain HTTP gets 500) until it is fixed.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import logging
import os
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import bcrypt
import yaml
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from exporter import __version__, landing
from exporter.config import ConfigError, split_listen_address

log = logging.getLogger("ndr_exporter.web")

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# exporter-toolkit also has these two; both accept a certificate without verifying it, which
# Python's ssl module cannot do (and the toolkit's own docs call them insecure).
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
           "Strict-Transport-Security")
TLS_KEYS = ("cert_file", "key_file", "client_auth_type", "client_ca_file", "client_allowed_sans",
            "min_version", "max_version", "prefer_server_cipher_suites",
            "cert", "key", "client_ca", "cipher_suites", "curve_preferences")
UNSUPPORTED_TLS_KEYS = {
    "cert": "inline certificates are not supported; use cert_file",
    "key": "inline keys are not supported; use key_file",
    "client_ca": "an inline CA is not supported; use client_ca_file",
    "cipher_suites": "not supported: the cipher suites are OpenSSL's defaults for the TLS version",
    "curve_preferences": "not supported: the curves are OpenSSL's defaults",
}
TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
# Checked against when the user name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(10))


@dataclass
class TlsSettings:
    cert_file: str
    key_file: str
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    client_allowed_sans: list[str] = field(default_factory=list)
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True


@dataclass
class WebConfig:
    tls: TlsSettings | None = None
    users: dict[str, bytes] = field(default_factory=dict)   # user -> bcrypt hash
    headers: dict[str, str] = field(default_factory=dict)

    def files(self) -> list[str]:
        """Files whose change means the config must be read again."""
        if self.tls is None:
            return []
        return [f for f in (self.tls.cert_file, self.tls.key_file, self.tls.client_ca_file) if f]


# --- reading and checking the file -------------------------------------------------------------

def load_web_config(path: str) -> WebConfig:
    """Read a web config file; ConfigError names the file and the field that is wrong."""
    try:
        with open(path, "rb") as f:
            data = yaml.safe_load(f.read())
    except OSError as err:
        raise ConfigError(f"web config {path}", f"cannot read it: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"web config {path}", f"not valid YAML{where}") from None
    base = os.path.dirname(os.path.abspath(path))
    try:
        config = _web_config_from_dict({} if data is None else data, base)
        if config.tls is not None:
            make_ssl_context(config.tls)  # load the certificate and key now, to refuse bad ones at start
    except ConfigError as err:
        raise ConfigError(f"web config {path}: {err.field}", err.problem) from None
    return config


def _web_config_from_dict(data: Any, base: str) -> WebConfig:
    top = _mapping(data, "", TOP_KEYS)
    config = WebConfig()
    if top.get("rate_limit") is not None:
        raise ConfigError("rate_limit", "not supported by ndr-exporter; put a reverse proxy in front to limit rates")
    if top.get("tls_server_config") is not None:
        config.tls = _tls_from_dict(top["tls_server_config"], base)
    http = _mapping(top.get("http_server_config") or {}, "http_server_config", ("http2", "headers"))
    if "http2" in http and not isinstance(http["http2"], bool):
        raise ConfigError("http_server_config.http2", f"must be true or false, not {http['http2']!r}")
    headers = _mapping(http.get("headers") or {}, "http_server_config.headers", HEADERS)
    for name, value in headers.items():
        if not isinstance(value, str):
            raise ConfigError(f"http_server_config.headers.{name}", "must be a string")
        if value:
            config.headers[name] = value
    if config.headers.get("X-Frame-Options", "deny").lower() not in ("deny", "sameorigin"):
        raise ConfigError("http_server_config.headers.X-Frame-Options", "must be deny or sameorigin")
    if config.headers.get("X-Content-Type-Options", "nosniff").lower() != "nosniff":
        raise ConfigError("http_server_config.headers.X-Content-Type-Options", "must be nosniff")
    users = top.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise ConfigError("basic_auth_users", "must be a mapping of user name to bcrypt hash")
    for user, hashed in users.items():
        where = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            raise ConfigError(where, "a user name must be a non-empty string without ':'")
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            raise ConfigError(where, "not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')")
        config.users[user] = hashed.encode()
    return config


def _tls_from_dict(data: Any, base: str) -> TlsSettings:
    tls = _mapping(data, "tls_server_config", TLS_KEYS)
    for key, problem in UNSUPPORTED_TLS_KEYS.items():
        if tls.get(key) not in (None, "", []):
            raise ConfigError(f"tls_server_config.{key}", problem)
    for key in ("cert_file", "key_file"):
        if not tls.get(key):
            raise ConfigError(f"tls_server_config.{key}", "missing (both cert_file and key_file are needed for TLS)")
    settings = TlsSettings(cert_file=_file(tls["cert_file"], "tls_server_config.cert_file", base),
                           key_file=_file(tls["key_file"], "tls_server_config.key_file", base))
    auth = tls.get("client_auth_type") or "NoClientCert"
    if auth in UNVERIFIED_CLIENT_AUTH:
        raise ConfigError("tls_server_config.client_auth_type",
                          f"{auth} accepts client certificates without verifying them and is not supported; "
                          "use RequireAndVerifyClientCert or VerifyClientCertIfGiven")
    if auth not in CLIENT_AUTH:
        raise ConfigError("tls_server_config.client_auth_type",
                          f"unknown value {auth!r}; known: {', '.join(CLIENT_AUTH)}")
    settings.client_auth_type = auth
    if tls.get("client_ca_file"):
        settings.client_ca_file = _file(tls["client_ca_file"], "tls_server_config.client_ca_file", base)
    elif auth != "NoClientCert":
        raise ConfigError("tls_server_config.client_ca_file", f"missing: client_auth_type {auth} needs a CA to verify against")
    sans = tls.get("client_allowed_sans") or []
    if not isinstance(sans, list) or not all(isinstance(s, str) for s in sans):
        raise ConfigError("tls_server_config.client_allowed_sans", "must be a list of strings")
    if sans and auth != "RequireAndVerifyClientCert":
        raise ConfigError("tls_server_config.client_allowed_sans", "needs client_auth_type RequireAndVerifyClientCert")
    settings.client_allowed_sans = sans
    for key in ("min_version", "max_version"):
        value = tls.get(key)
        if value is None:
            continue
        if value not in TLS_VERSIONS:
            raise ConfigError(f"tls_server_config.{key}", f"unknown value {value!r}; known: {', '.join(TLS_VERSIONS)}")
        setattr(settings, key, value)
    if TLS_VERSIONS[settings.min_version] > TLS_VERSIONS[settings.max_version]:
        raise ConfigError("tls_server_config.min_version", f"{settings.min_version} is above max_version {settings.max_version}")
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise ConfigError("tls_server_config.prefer_server_cipher_suites", f"must be true or false, not {prefer!r}")
    settings.prefer_server_cipher_suites = prefer
    return settings


def make_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """A server context for these settings; ConfigError names the file that cannot be used."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
        ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    except ValueError as err:  # a version this OpenSSL build refuses
        raise ConfigError("tls_server_config.min_version", str(err)) from None
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as err:
        raise ConfigError("tls_server_config.cert_file",
                          f"cannot load {tls.cert_file} with key {tls.key_file}: {_ssl_reason(err)}") from None
    ctx.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError) as err:
            raise ConfigError("tls_server_config.client_ca_file",
                              f"cannot load {tls.client_ca_file}: {_ssl_reason(err)}") from None
    return ctx


def _ssl_reason(err: Exception) -> str:
    if isinstance(err, ssl.SSLError):
        return err.reason or str(err)
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)


def _mapping(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(where or "web config", "must be a mapping")
    for key in value:
        if key not in keys:
            raise ConfigError(f"{where}.{key}" if where else str(key), f"unknown field; known: {', '.join(keys)}")
    return value


def _file(value: Any, where: str, base: str) -> str:
    """A file named in the web config: relative paths are relative to the config file's folder."""
    if not isinstance(value, str) or not value:
        raise ConfigError(where, "must be a file name")
    path = value if os.path.isabs(value) else os.path.join(base, value)
    if not os.path.isfile(path):
        raise ConfigError(where, f"{path}: no such file")
    return path


# --- following the file ------------------------------------------------------------------------

class WebConfigWatcher:
    """The current web config and TLS context, re-read when the file or its certificates change."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._config = WebConfig()
        self._context: ssl.SSLContext | None = None
        self._error: str | None = None
        self._signature: tuple[Any, ...] = ()
        self._verified: set[bytes] = set()  # digests of (user, password, hash) that passed bcrypt
        if path is not None:
            self._config = load_web_config(path)  # ConfigError goes to the caller at start
            self._context = make_ssl_context(self._config.tls) if self._config.tls else None
            self._signature = self._stat()

    def _stat(self) -> tuple[Any, ...]:
        sig: list[Any] = []
        for path in [self.path or ""] + self._config.files():
            try:
                st = os.stat(path)
                sig.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError:
                sig.append((path, None))
        return tuple(sig)

    def current(self) -> tuple[WebConfig, ssl.SSLContext | None, str | None]:
        """(config, TLS context or None, error or None); an error means: refuse the request."""
        if self.path is None:
            return self._config, None, None
        with self._lock:
            signature = self._stat()
            if signature != self._signature:
                self._signature = signature
                try:
                    config = load_web_config(self.path)
                    context = make_ssl_context(config.tls) if config.tls else None
                except ConfigError as err:
                    self._error = str(err)
                    log.error("web config not reloaded; refusing requests until it is fixed",
                              extra={"error": self._error})
                else:
                    self._config, self._context, self._error = config, context, None
                    self._verified.clear()
                    self._signature = self._stat()
                    log.info("web config reloaded", extra={"file": self.path, "tls": config.tls is not None,
                                                           "users": len(config.users)})
            return self._config, self._context, self._error

    def check_password(self, config: WebConfig, user: str, password: str) -> bool:
        hashed = config.users.get(user)
        if hashed is None:
            bcrypt.checkpw(password.encode(), _DUMMY_HASH)
            return False
        digest = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed))).digest()
        with self._lock:
            if digest in self._verified:
                return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                self._verified.add(digest)
        return ok


# --- the server --------------------------------------------------------------------------------

class ExporterServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that wraps each accepted connection in the TLS context of the moment."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, registry: CollectorRegistry,
                 telemetry_path: str, watcher: WebConfigWatcher) -> None:
        self.address_family = family
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.watcher = watcher
        super().__init__(address, Handler, bind_and_activate=False)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # ":port" listens on IPv4 and IPv6 alike, as Go exporters do.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def finish_request(self, request: Any, client_address: Any) -> None:
        config, context, error = self.watcher.current()
        if error is not None and config.tls is not None:
            request.close()  # the file broke while serving TLS: no handshake until it is fixed
            return
        if context is not None:
            request.settimeout(10)
            try:
                request = context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as err:
                log.debug("TLS handshake failed", extra={"client": client_address[0], "error": str(err)})
                request.close()
                return
            if config.tls and config.tls.client_allowed_sans and not _san_allowed(request, config.tls.client_allowed_sans):
                log.debug("client certificate SAN not allowed", extra={"client": client_address[0]})
                request.close()
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving a request", exc_info=True, extra={"client": str(client_address)})


def _san_allowed(conn: ssl.SSLSocket, allowed: list[str]) -> bool:
    cert = conn.getpeercert() or {}
    sans = [value for _kind, value in cert.get("subjectAltName", ())]
    return any(san in allowed for san in sans)


class Handler(BaseHTTPRequestHandler):
    server: ExporterServer
    protocol_version = "HTTP/1.1"
    server_version = f"ndr-exporter/{__version__}"
    sys_version = ""
    timeout = 30

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        config, _context, error = self.server.watcher.current()
        if error is not None:
            self._reply(500, b"web config is not usable; see the exporter's log\n", "text/plain; charset=utf-8",
                        config, head)
            return
        if config.users and not self._authorized(config):
            self._reply(401, b"Unauthorized\n", "text/plain; charset=utf-8", config, head,
                        {"WWW-Authenticate": 'Basic realm="ndr-exporter", charset="UTF-8"'})
            return
        path = self.path.split("?", 1)[0]
        if path == self.server.telemetry_path:
            self._metrics(config, head)
        elif path == "/":
            body = landing.render(self.server.registry, self.server.telemetry_path)
            self._reply(200, body, "text/html; charset=utf-8", config, head)
        else:
            self._reply(404, b"Not Found\n", "text/plain; charset=utf-8", config, head)

    def _authorized(self, config: WebConfig) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and self.server.watcher.check_password(config, user, password)

    def _metrics(self, config: WebConfig, head: bool) -> None:
        try:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(self.server.registry)
        except Exception:
            log.error("collecting metrics failed", exc_info=True)
            self._reply(500, b"collecting metrics failed; see the exporter's log\n", "text/plain; charset=utf-8",
                        config, head)
            return
        extra = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=6)
            extra["Content-Encoding"] = "gzip"
        self._reply(200, body, content_type, config, head, extra)

    def _reply(self, status: int, body: bytes, content_type: str, config: WebConfig, head: bool,
               extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**config.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("http request", extra={"client": self.client_address[0], "request": format % args})


def make_server(listen_address: str, telemetry_path: str, registry: CollectorRegistry,
                web_config_file: str | None) -> ExporterServer:
    """Read the web config (ConfigError if unusable) and bind the listening socket (OSError if taken).

    The socket is bound but not yet listening: call server.server_activate() once the daemon
    runs, so a client that can connect always finds the sources started.
    """
    watcher = WebConfigWatcher(web_config_file)
    host, port = split_listen_address(listen_address)
    if host == "":
        family, address = (socket.AF_INET6, ("::", port)) if socket.has_ipv6 else (socket.AF_INET, ("0.0.0.0", port))
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        address = (host, port)
    try:
        server = ExporterServer(address, family, registry, telemetry_path, watcher)
    except OSError:
        if not (family == socket.AF_INET6 and host == ""):
            raise
        # no IPv6 on this host (some containers): every IPv4 address instead
        family, address = socket.AF_INET, ("0.0.0.0", port)
        server = ExporterServer(address, family, registry, telemetry_path, watcher)
    try:
        server.server_bind()
    except OSError:
        server.server_close()
        raise
    return server
