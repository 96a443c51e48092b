"""The HTTP end of the pipeline: /metrics and a landing page, with TLS and basic auth.

Serves the metrics stage's registry with prometheus_client's own exposition
(choose_encoder), on the standard library's ThreadingHTTPServer. Each connection is
served with the web config in force at that moment (exporter/web_config.py follows the
`--web.config.file`): a renewed certificate or a new user applies without a restart; a
file that becomes unusable makes requests fail (TLS handshakes are refused, plain HTTP gets
500) until it is fixed, and a change that lowers protection waits until the file has settled
(503 meanwhile): never served open.
"""

from __future__ import annotations

import base64
import binascii
import errno
import gzip
import logging
import os
import queue
import selectors
import socket
import ssl
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from exporter import __version__, landing
from exporter.config import split_listen_address
from exporter.web_config import WebConfig, WebConfigWatcher

if TYPE_CHECKING:
    from exporter.metrics import MetricsCollector

log = logging.getLogger("ndr_exporter.web")

# Seconds a connection may sit idle (between requests, or inside one) before it is closed: idle
# connections each hold a thread and a descriptor. Prometheus reconnects for its next scrape.
IDLE_SECONDS = 5


# --- the rendered exposition -------------------------------------------------------------------

_EOF = b"# EOF\n"


class Exposition:
    """/metrics rendered once per publish: a scrape costs a copy of bytes made earlier.

    `cached` renders the families whose output changes only when `version()` does (the
    published snapshot: it changes at a publish; MetricsCollector.render); `live` holds the
    collectors read from the system
    (process CPU and memory), read again at a scrape once the last reading is LIVE_SECONDS
    old. The cached part is rendered, by the encoder prometheus_client chooses for the
    scrape's Accept header, at the first scrape in that format after a publish; the live part
    is rendered with the same encoder and appended. The result is what that encoder renders
    for one registry holding the cached collectors, then the live ones: the text format is a
    plain concatenation of families, and OpenMetrics ends in one "# EOF" line (kept off the
    cached part).

    Rendering a new snapshot takes tens of milliseconds with thousands of series (and holds
    the GIL): one scrape does it, and scrapes that come meanwhile get the rendering of the
    snapshot before (as if they had come a moment earlier) rather than queueing behind it. A
    scrape that finds no rendering in progress always gets the snapshot published last.

    Gzip (what Prometheus asks for): the cached part is compressed once, as the start of a
    gzip stream flushed to a byte boundary (Z_SYNC_FLUSH) but not finished, and only that,
    its CRC-32 and its length are kept. A body is that start, the live part compressed on its
    own as the last deflate blocks (they refer to nothing before them, so the concatenation is
    one valid deflate stream), and the gzip trailer (the CRC-32 and length of the whole). So
    the body is one gzip member (a client that reads only the first of several members, as
    curl does, still sees every series), and the uncompressed text is kept only for plain
    scrapes of the latest snapshot rendered.
    """

    # Reading the process series costs a few /proc reads (about 70 us of CPU, and a wait for
    # the GIL after each read when other threads run): 50 scrapers in the same second share one.
    LIVE_SECONDS = 1.0

    def __init__(self, cached: MetricsCollector, live: CollectorRegistry, version: Any) -> None:
        self.cached = cached
        self.live = live
        self.version = version
        self._lock = threading.Lock()        # guards the dicts below; never held while rendering the snapshot
        self._rendering = threading.Lock()   # held by the one scrape rendering a snapshot
        # (content type, gzip) -> (version, part): the plain text, or (gzip start, CRC-32, length);
        # the latest one made, also while it is out of date (see render)
        self._parts: dict[tuple[str, bool], tuple[Any, Any]] = {}
        self._live_at = -self.LIVE_SECONDS   # monotonic time the live part was last read
        self._live: dict[str, bytes] = {}    # content type -> the live part
        self._bodies: dict[str, tuple[Any, bytes, bytes]] = {}   # content type -> (gzip part, live part, body)

    def render(self, encoder: Any, content_type: str, compressed: bool) -> bytes:
        variant = (content_type, compressed)
        with self._lock:
            live = self._live_part(encoder, content_type)
            key = self.version()
            made = self._parts.get(variant)
        if made is not None and made[0] == key:
            part = made[1]
        elif not self._rendering.acquire(blocking=made is None):
            part = made[1]   # another scrape is rendering the new snapshot: the one before
        else:
            try:
                part = self._make(encoder, variant)
            finally:
                self._rendering.release()
        if not compressed:
            return part + live
        with self._lock:
            done = self._bodies.get(content_type)
            if done is not None and done[0] is part and done[1] is live:
                return done[2]
        start, crc, size = part
        trailer = struct.pack("<II", zlib.crc32(live, crc), (size + len(live)) & 0xFFFFFFFF)
        body = start + zlib.compress(live, 6, wbits=-15) + trailer
        with self._lock:
            self._bodies[content_type] = (part, live, body)
        return body

    def _live_part(self, encoder: Any, content_type: str) -> bytes:
        now = time.monotonic()
        if now - self._live_at >= self.LIVE_SECONDS:
            self._live, self._live_at = {}, now
        live = self._live.get(content_type)
        if live is None:
            live = self._live[content_type] = encoder(self.live)
        return live

    def _make(self, encoder: Any, variant: tuple[str, bool]) -> Any:
        """This variant's part for the snapshot published now (made by an earlier holder of the
        rendering lock if it is already there)."""
        key = self.version()   # read first: a publish while rendering makes the next scrape render again
        content_type, compressed = variant
        with self._lock:
            made = self._parts.get(variant)
            plain_made = self._parts.get((content_type, False))
        if made is not None and made[0] == key:
            return made[1]
        if plain_made is not None and plain_made[0] == key:
            plain = plain_made[1]
        else:
            plain = self.cached.render(encoder, content_type)
            if plain.endswith(_EOF):   # OpenMetrics: one "# EOF", after the live part
                plain = plain[:-len(_EOF)]
        if compressed:
            compressor = zlib.compressobj(6, zlib.DEFLATED, 31)   # wbits 31: with the gzip header
            part = (compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(plain), len(plain))
        else:
            part = plain
        with self._lock:
            self._parts[variant] = (key, part)
            for other, (version, _part) in list(self._parts.items()):
                if version != key and not other[1]:
                    del self._parts[other]   # an older plain text: only gzip's few kB are kept as fallback
        return part


# --- the server --------------------------------------------------------------------------------

class ExporterServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that wraps each accepted connection in the TLS context of the moment.

    Each connection has a thread of its own while it is open (a kept-alive connection blocks only
    its thread), but a thread that has finished with a connection waits up to
    SPARE_SECONDS for the next one instead of ending, and at most SPARE_THREADS wait: starting a
    thread made the accepting thread wait until it ran (Thread.start), which bounded a server
    scraped over new connections to one thread start at a time.
    """

    daemon_threads = True
    block_on_close = False
    # A scrape storm queues in the kernel rather than being refused (capped by net.core.somaxconn).
    request_queue_size = 1024
    SPARE_THREADS = 16
    SPARE_SECONDS = 60.0

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, registry: CollectorRegistry,
                 telemetry_path: str, watcher: WebConfigWatcher) -> None:
        self.address_family = family
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.watcher = watcher
        self.exposition: Exposition | None = None   # set by the daemon's runner: scrapes from a cache
        self._fd_warned = 0.0
        self._spare_lock = threading.Lock()
        self._spare = 0   # threads waiting on _next for a connection, not yet claimed by process_request
        self._next: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._served = threading.Event()
        super().__init__(address, Handler, bind_and_activate=False)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """socketserver's loop without its poll: asleep in select() until a connection comes or
        shutdown() writes to a pipe. socketserver's own loop wakes every poll_interval to look
        for a shutdown request, which was the whole CPU of an idle exporter (about 0.25 ms a
        second). poll_interval is accepted and not used."""
        self._served.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._stop_r, selectors.EVENT_READ)
                while True:
                    ready = selector.select()
                    if any(key.fileobj == self._stop_r for key, _ in ready):
                        break
                    if ready:
                        self._handle_request_noblock()
                    self.service_actions()
        finally:
            self._served.set()

    def shutdown(self) -> None:
        """End serve_forever (running in another thread) and wait until it has."""
        try:
            os.write(self._stop_w, b"x")
        except BlockingIOError:
            pass   # a byte is there already
        self._served.wait()

    def server_close(self) -> None:
        super().server_close()
        for fd in (self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stop_r = self._stop_w = -1

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a spare thread, or start one for it."""
        with self._spare_lock:
            claimed = self._spare > 0
            if claimed:
                self._spare -= 1
        if claimed:
            self._next.put((request, client_address))
        else:
            threading.Thread(target=self._connection_thread, args=(request, client_address), daemon=True).start()

    def _connection_thread(self, request: Any, client_address: Any) -> None:
        while True:
            self.process_request_thread(request, client_address)   # serves it, then closes it
            with self._spare_lock:
                if self._spare >= self.SPARE_THREADS:
                    return
                self._spare += 1
            try:
                request, client_address = self._next.get(timeout=self.SPARE_SECONDS)
            except queue.Empty:
                with self._spare_lock:
                    if self._spare > 0:   # not claimed: end
                        self._spare -= 1
                        return
                # claimed by process_request as the wait ended: its connection is on the way
                request, client_address = self._next.get()

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
    # With Nagle's algorithm a reply's last segment may wait for the client's delayed ACK of the
    # one before it (40 ms on every kept-alive scrape when headers and body went out apart).
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
        self.end_headers_and_body(b"" if head else body)

    def end_headers_and_body(self, body: bytes) -> None:
        """Send the headers and the body in one write: one segment where they fit, and no
        small write for Nagle's algorithm to hold back (end_headers() writes them alone)."""
        parts: list[bytes] = getattr(self, "_headers_buffer", [])   # none for an HTTP/0.9 request
        if self.request_version != "HTTP/0.9":
            parts.append(b"\r\n")
        parts.append(body)
        self._headers_buffer = []
        self.wfile.write(b"".join(parts))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if log.isEnabledFor(logging.DEBUG):
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
