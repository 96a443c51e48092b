"""The HTTP end of the pipeline: /metrics, a landing page, and exporter-toolkit web config.

Serves the metrics stage's registry with prometheus_client's own exposition
(choose_encoder), on the standard library's ThreadingHTTPServer. `--web.config.file`
takes the file format of Prometheus' exporter-toolkit: TLS (with client certificates)
and basic auth with bcrypt hashes. The file, and the certificate files it names, are
compared with what is in force on every connection (see WebConfigWatcher), so a renewed
certificate or a new user applies without a restart. A file that cannot be used is
refused at start with the field named; if it later changes into something unusable,
requests fail (TLS handshakes are refused, plain HTTP gets 500) until it is fixed, and a change
that lowers protection waits until the file has settled (503 meanwhile): never served open.
"""

from __future__ import annotations

import base64
import binascii
import errno
import functools
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
import time
import zlib
from typing import Any, NamedTuple

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
# Seconds a connection may sit idle (between requests, or inside one) before it is closed: idle
# connections each hold a thread and a descriptor. Prometheus reconnects for its next scrape.
IDLE_SECONDS = 5
BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")


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

    def usual_cost(self) -> int:
        """The bcrypt cost most users' hashes have (10 with no users): what a check usually costs."""
        costs = [int(h.split(b"$")[2]) for h in self.users.values()]
        return max(set(costs), key=costs.count) if costs else 10

    def files(self) -> list[str]:
        """Files whose change means the config must be read again."""
        if self.tls is None:
            return []
        return [f for f in (self.tls.cert_file, self.tls.key_file, self.tls.client_ca_file) if f]


# --- reading and checking the file -------------------------------------------------------------

def load_web_config(path: str) -> WebConfig:
    """Read a web config file; ConfigError names the file and the field that is wrong."""
    return parse_web_config(_read_bytes(path), path)


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise ConfigError(f"web config {path}", f"cannot read it: {err.strerror}") from None


def parse_web_config(text: bytes, path: str) -> WebConfig:
    """The web config in `text` (read from `path`, which relative file names are resolved against)."""
    try:
        data = yaml.safe_load(text)
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


def _digest(text: bytes, files: list[str]) -> bytes:
    """SHA-256 over the config's bytes and the bytes of the files it names (unreadable ones by error)."""
    h = hashlib.sha256(text)
    for path in files:
        h.update(b"\0" + path.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(f.read())
        except OSError as err:
            h.update(f"unreadable:{err.errno}".encode())
    return h.digest()


def _weaker(new: WebConfig, old: WebConfig) -> list[str]:
    """How `new` protects the endpoint less than `old` does (empty when it does not)."""
    changes = []
    if old.users and not new.users:
        changes.append("basic auth turned off")
    if old.tls is not None and new.tls is None:
        changes.append("TLS turned off")
    if old.tls is not None and new.tls is not None:
        rank = list(CLIENT_AUTH)
        if rank.index(new.tls.client_auth_type) < rank.index(old.tls.client_auth_type):
            changes.append(f"client_auth_type lowered to {new.tls.client_auth_type}")
        if old.tls.client_allowed_sans and not new.tls.client_allowed_sans:
            changes.append("client_allowed_sans removed")
        if TLS_VERSIONS[new.tls.min_version] < TLS_VERSIONS[old.tls.min_version]:
            changes.append(f"min_version lowered to {new.tls.min_version}")
    return changes


# --- following the file ------------------------------------------------------------------------

class WebState(NamedTuple):
    """What a connection is served with: the config in force, its TLS context, and a refusal.

    `refusal` is None when requests may be served; otherwise the reason they are refused, and
    `status` the HTTP status a plain-HTTP request gets (a TLS connection is closed instead).
    """

    config: WebConfig
    context: ssl.SSLContext | None
    refusal: str | None = None
    status: int = 200


class WebConfigWatcher:
    """The web config in force, kept equal to the file on disk without ever serving less than it asks.

    Every connection and request asks `current()`. The file and the certificate files it names are
    compared by content (a SHA-256 of their bytes), read again whenever their stat changed or was
    written within the last RACY_SECONDS (a stat taken in the same clock tick as a write cannot tell
    that write from the next one, as git's "racy clean" files). The stat is taken before the bytes are
    read, so a write that lands after the read is seen on the next request, never lost.

    Fail closed: a file that cannot be used refuses requests until it is fixed, and a change that
    lowers protection (TLS or basic auth turned off, client certificates no longer required, the
    list of allowed client names removed, older TLS versions allowed) is applied only once the file
    has stayed the same for SETTLE_SECONDS; until then requests are refused. An in-place rewrite truncates the file before
    writing it, and for that instant the empty file reads as "no TLS, no auth".
    """

    RACY_SECONDS = 2.0
    SETTLE_SECONDS = 1.0

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state = WebState(WebConfig(), None)
        self._digest = b""                 # content digest of what is in force
        self._stat_seen: tuple[Any, ...] = ()
        self._pending: bytes | None = None  # digest of a weaker config waiting to settle
        self._verified: set[bytes] = set()  # digests of (user, password, hash) that passed bcrypt
        if path is not None:
            text = _read_bytes(path)   # ConfigError goes to the caller at start
            config = parse_web_config(text, path)
            self._state = WebState(config, make_ssl_context(config.tls) if config.tls else None)
            _dummy_hash(config.usual_cost())  # made now, not on the first unknown user's request
            self._stat_seen = self._stat(config.files())[0]
            self._digest = _digest(text, config.files())

    def _stat(self, files: list[str]) -> tuple[tuple[Any, ...], float]:
        """A stat signature of the config file and `files`, and the newest mtime among them."""
        sig: list[Any] = []
        newest = 0.0
        for path in [self.path or ""] + files:
            try:
                st = os.stat(path)
            except OSError as err:
                sig.append((path, err.errno))
                continue
            sig.append((path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            newest = max(newest, st.st_mtime, st.st_ctime)
        return tuple(sig), newest

    def current(self) -> WebState:
        if self.path is None:
            return self._state
        with self._lock:
            files = self._state.config.files()
            signature, newest = self._stat(files)
            now = time.time()
            unchanged = signature == self._stat_seen and now - newest > self.RACY_SECONDS
            if unchanged and self._state.refusal is None:
                return self._state
            self._stat_seen = signature
            try:
                text = _read_bytes(self.path)
                digest = _digest(text, files)
                if digest == self._digest:
                    self._serve_again()
                    return self._state
                config = parse_web_config(text, self.path)
                context = make_ssl_context(config.tls) if config.tls else None
                digest = _digest(text, config.files())  # the new config may name other files
            except ConfigError as err:
                return self._refuse(str(err), 500, "web config not reloaded; refusing requests until it is fixed")
            weaker = _weaker(config, self._state.config)
            # settled: unchanged for SETTLE_SECONDS before the read, and not touched during it
            settled = now - newest >= self.SETTLE_SECONDS and self._stat(files)[0] == signature
            if weaker and not settled:
                if self._pending != digest:
                    log.warning("web config asks for less protection; refusing requests until the file has "
                                "stayed the same for %.0f s", self.SETTLE_SECONDS,
                                extra={"file": self.path, "change": ", ".join(weaker)})
                self._pending = digest
                return self._refuse("web config is changing to less protection", 503, None)
            self._state = WebState(config, context)
            _dummy_hash(config.usual_cost())
            self._digest, self._pending = digest, None
            self._verified.clear()
            fields = {"file": self.path, "tls": config.tls is not None, "users": len(config.users)}
            if weaker:
                log.warning("web config reloaded with less protection", extra=fields | {"change": ", ".join(weaker)})
            else:
                log.info("web config reloaded", extra=fields)
            return self._state

    def _serve_again(self) -> None:
        """The file is back to the config in force (after a broken or weakening write): serve again."""
        self._pending = None
        if self._state.refusal is not None:
            self._state = WebState(self._state.config, self._state.context)
            log.info("web config back to the one in force; serving again", extra={"file": self.path})

    def _refuse(self, reason: str, status: int, message: str | None) -> WebState:
        if message is not None and self._state.refusal != reason:
            log.error(message, extra={"error": reason})
        self._state = WebState(self._state.config, self._state.context, reason, status)
        return self._state

    def check_password(self, config: WebConfig, user: str, password: str) -> bool:
        """Whether `password` is `user`'s. Costs one bcrypt check whatever is wrong, so neither the
        time taken nor the reply tells an unknown user from a wrong password (or one too long)."""
        secret = password.encode()
        hashed = config.users.get(user)
        if hashed is not None:
            digest = hashlib.sha256(b"\0".join((user.encode(), secret, hashed))).digest()
            with self._lock:
                if digest in self._verified:
                    return True
        # bcrypt reads at most 72 bytes: a longer password is refused, after the same work
        ok = bcrypt.checkpw(secret[:72], hashed if hashed is not None else _dummy_hash(config.usual_cost()))
        if not ok or hashed is None or len(secret) > 72:
            return False
        with self._lock:
            self._verified.add(digest)
        return True


@functools.lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> bytes:
    """A hash no password matches, checked for unknown users at the cost the real users have."""
    return bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))


# --- the rendered exposition -------------------------------------------------------------------

_EOF = b"# EOF\n"


class Exposition:
    """/metrics rendered once per publish: a scrape costs a copy, plus the few live series.

    `cached` holds the collectors whose output changes only when `version()` does (the
    published snapshot: it changes at a publish); `live` the ones read at every scrape
    (process CPU and memory). The cached part is rendered, by the encoder prometheus_client
    chooses for the scrape's Accept header, at the first scrape in that format after a
    publish; each scrape renders the live part with the same encoder and appends it. The
    result is what that encoder renders for one registry holding the cached collectors, then
    the live ones: the text format is a plain concatenation of families, and OpenMetrics ends
    in one "# EOF" line (kept off the cached part).

    Gzip: the cached part is compressed once and the compressor flushed (Z_SYNC_FLUSH) but
    not finished; a scrape finishes a copy of it with the live part, so the body is one
    gzip stream (a client that reads only the first of several gzip members, as curl does,
    still sees every series), at the cost of compressing a few hundred bytes.
    """

    def __init__(self, cached: CollectorRegistry, live: CollectorRegistry, version: Any) -> None:
        self.cached = cached
        self.live = live
        self.version = version
        self._lock = threading.Lock()
        self._key: Any = object()
        self._parts: dict[str, tuple[bytes, Any, bytes]] = {}   # content type -> (plain, compressor, its output)

    def render(self, encoder: Any, content_type: str, compressed: bool) -> bytes:
        plain, compressor, head = self._cached(encoder, content_type)
        live = encoder(self.live)
        if not compressed:
            return plain + live
        finish = compressor.copy()
        return head + finish.compress(live) + finish.flush()

    def _cached(self, encoder: Any, content_type: str) -> tuple[bytes, Any, bytes]:
        with self._lock:   # one renders after a publish; concurrent scrapes wait for it
            key = self.version()
            if key != self._key:
                self._parts, self._key = {}, key
            part = self._parts.get(content_type)
            if part is None:
                plain = encoder(self.cached)
                if plain.endswith(_EOF):   # OpenMetrics: one "# EOF", after the live part
                    plain = plain[:-len(_EOF)]
                compressor = zlib.compressobj(6, zlib.DEFLATED, 31)   # wbits 31: a gzip header and trailer
                head = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
                part = self._parts[content_type] = (plain, compressor, head)
            return part


# --- the server --------------------------------------------------------------------------------

class ExporterServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that wraps each accepted connection in the TLS context of the moment."""

    daemon_threads = True
    block_on_close = False
    # A scrape storm queues in the kernel rather than being refused (capped by net.core.somaxconn).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, registry: CollectorRegistry,
                 telemetry_path: str, watcher: WebConfigWatcher) -> None:
        self.address_family = family
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.watcher = watcher
        self.exposition: Exposition | None = None   # set by the daemon's runner: scrapes from a cache
        self._fd_warned = 0.0
        super().__init__(address, Handler, bind_and_activate=False)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # ":port" listens on IPv4 and IPv6 alike, as Go exporters do.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def finish_request(self, request: Any, client_address: Any) -> None:
        config, context, refusal, _status = self.watcher.current()
        if refusal is not None and config.tls is not None:
            request.close()  # the file broke or is changing while serving TLS: no handshake until it settles
            return
        if context is not None:
            request.settimeout(IDLE_SECONDS)
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

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as err:
            if err.errno in (errno.EMFILE, errno.ENFILE):
                # The connection stays in the backlog and the listening socket stays readable: without
                # a pause serve_forever would spin on accept() at 100% CPU until a descriptor frees up.
                if time.monotonic() - self._fd_warned > 10:
                    self._fd_warned = time.monotonic()
                    log.warning("too many open files: cannot accept connections", extra={"error": err.strerror})
                time.sleep(0.05)
            raise

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
    timeout = IDLE_SECONDS   # a kept-alive connection idle this long (or a slow request) is closed
    # Headers and body go out in two writes: with Nagle's algorithm the body waited for the
    # client's delayed ACK of the headers, 40 ms on every kept-alive scrape (bench/scrape.py).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        config, _context, refusal, status = self.server.watcher.current()
        if refusal is not None:
            body = (b"web config is not usable; see the exporter's log\n" if status == 500
                    else b"web config is changing; retry in a moment\n")
            self._reply(status, body, "text/plain; charset=utf-8", config, head, {"Retry-After": "1"})
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
        compressed = gzip_accepted(self.headers.get("Accept-Encoding", ""))
        try:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            exposition = self.server.exposition
            if exposition is not None:
                body = exposition.render(encoder, content_type, compressed)
            else:
                body = encoder(self.server.registry)
                if compressed:
                    body = gzip.compress(body, compresslevel=6)
        except Exception:
            log.error("collecting metrics failed", exc_info=True)
            self._reply(500, b"collecting metrics failed; see the exporter's log\n", "text/plain; charset=utf-8",
                        config, head)
            return
        extra = {}
        if compressed:
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
