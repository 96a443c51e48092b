"""The exporter-toolkit web config: reading it, checking it, and following it safely.

Part of the HTTP end of the pipeline (exporter/web.py serves with what this module says).
`--web.config.file` takes the file format of Prometheus' exporter-toolkit: TLS (with client
certificates) and basic auth with bcrypt hashes. A file that cannot be used is refused at start
with the field named (ConfigError). While serving, WebConfigWatcher keeps the config in force
equal to the file and the certificates it names, compared by content on every connection, and
never serves less protection than the file asks for: a broken file refuses requests, and a change
that lowers protection waits until the file has settled. check_password costs one bcrypt check
whatever is wrong, so neither its time nor its answer tells which user names exist.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from exporter.config import ConfigError

# bcrypt and yaml load when a web config needs them (a file to read, users to check), not in
# every daemon: together about 2 MB of resident memory (bench/memory.py).

log = logging.getLogger("ndr_exporter.web_config")

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
    import yaml

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

    Fail closed: a file that cannot be used, or that was emptied, refuses requests until it is fixed, and a change that
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
            if config.users:   # made now, not on the first unknown user's request
                _dummy_hash(config.usual_cost())
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
            if weaker and not text.strip():
                # An emptied file is a write in progress (truncated, not yet written: a writer
                # descheduled between the two can leave it so for seconds) or an accident, never
                # a way to turn protection off: refused for as long as it stays empty.
                return self._refuse("web config file is empty", 503,
                                    "web config file is empty; refusing requests until it is written again")
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
            if config.users:
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
        import bcrypt   # loaded at start already when the config has users (_dummy_hash)

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
    import bcrypt

    return bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))
