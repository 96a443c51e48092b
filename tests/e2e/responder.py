"""A small SMTP server for the end-to-end suite: the "remote" mail server the MTAs deliver to.

It listens on loopback and answers each RCPT with the reply that the recipient's local part
asks for, so a test can make Postfix or Exim log any remote status code it likes:

    r550-5.1.1@any.domain   ->  550 5.1.1 <text>
    r451-4.7.1@any.domain   ->  451 4.7.1 <text>
    r450@any.domain         ->  450 <text>            (a reply with no enhanced code)
    r450-4.2.1@any.domain   ->  450 4.2.1 <text>
    r421-4.4.2@any.domain   ->  421 4.4.2 <text>, then the connection is closed
    d554-5.7.1@any.domain   ->  250 2.1.5 at RCPT, then 554 5.7.1 <text> after DATA
    anything else           ->  250 2.1.5 <text>      (accepted)

After DATA a message gets `250 2.0.0 Ok: queued as <n>`, unless one of its recipients asked
for a data-stage reply (the "d" local parts). The server counts what it
accepted, and every RCPT it answered with the envelope sender of its transaction (`rcpts`),
so a test can wait for the remote side too and tell an address-verification probe (Postfix
sends it from double-bounce@ and quits after RCPT) from a delivery. It runs in a thread of the test process
(asyncio, one event loop) and is stopped by `stop()` or by leaving a `with` block.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field

# The local part that picks a reply: r (at RCPT) or d (after DATA), <3-digit reply>[-<enhanced code>].
_WANTED = re.compile(r"^([rd])([245]\d\d)(?:-([245]\.\d{1,3}\.\d{1,3}))?$", re.IGNORECASE)
_ADDRESS = re.compile(r"<([^>]*)>")

# Wording for the replies, close to what real servers say; the code is what matters.
_TEXT = {
    "2.1.5": "Recipient OK",
    "4.2.1": "Mailbox temporarily disabled, try again later",
    "4.2.2": "Mailbox full, try again later",
    "4.4.2": "Service shutting down, closing connection",
    "4.7.1": "Greylisted, please try again later",
    "5.1.1": "The email account that you tried to reach does not exist",
    "5.3.4": "Message size exceeds fixed maximum message size",
    "5.4.6": "Routing loop detected",
    "5.7.1": "Delivery not authorized, message refused",
    "5.6.0": "Message content rejected",
    "5.7.606": "Access denied, banned sending IP",
}


def reply_for(recipient: str, stage: str = "r") -> str:
    """The reply line (without CRLF) that the recipient asks for at a stage: "r" RCPT, "d" DATA."""
    local = recipient.rsplit("@", 1)[0]
    match = _WANTED.match(local)
    if not match or match.group(1).lower() != stage:
        return "250 2.1.5 " + _TEXT["2.1.5"] if stage == "r" else ""
    reply, code = match.group(2), match.group(3)
    if code is None:
        return f"{reply} Requested action not taken, try again later"
    return f"{reply} {code} {_TEXT.get(code, 'Test reply from the e2e responder')}"


@dataclass(frozen=True)
class Rcpt:
    """One RCPT the responder answered: the transaction's MAIL FROM, the recipient, the reply."""

    sender: str
    recipient: str
    reply: str


_MAIL_FROM = re.compile(r"FROM:\s*<([^>]*)>", re.IGNORECASE)


@dataclass
class Responder:
    """The SMTP responder on 127.0.0.1:port (port 0: a free one, read `port` after start)."""

    port: int = 0
    hostname: str = "responder.e2e.test"
    accepted: int = 0                       # messages accepted after DATA
    rcpt_replies: list[str] = field(default_factory=list)  # every RCPT reply sent, in order
    rcpts: list[Rcpt] = field(default_factory=list)        # the same, with sender and recipient
    data_replies: list[str] = field(default_factory=list)  # every reply sent after DATA, in order
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- life cycle ---
    def start(self) -> "Responder":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._session, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="e2e-responder", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the SMTP responder did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._server = None

    def __enter__(self) -> "Responder":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one SMTP session ---
    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        recipients = 0
        sender = ""
        data_reply = ""  # a data-stage reply one of the accepted recipients asked for
        try:
            await send(f"220 {self.hostname} ESMTP e2e responder")
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb == "EHLO":
                    await send(f"250-{self.hostname}")
                    await send("250-PIPELINING")
                    await send("250-SIZE 10240000")
                    await send("250-8BITMIME")
                    await send("250 ENHANCEDSTATUSCODES")
                elif verb == "HELO":
                    await send(f"250 {self.hostname}")
                elif verb == "MAIL":
                    recipients, data_reply = 0, ""
                    found = _MAIL_FROM.search(line)
                    sender = found.group(1) if found else ""
                    await send("250 2.1.0 Sender OK")
                elif verb == "RCPT":
                    found = _ADDRESS.search(line)
                    address = found.group(1) if found else ""
                    reply = reply_for(address)
                    with self._lock:
                        self.rcpt_replies.append(reply)
                        self.rcpts.append(Rcpt(sender, address, reply))
                    await send(reply)
                    if reply.startswith("421"):
                        break
                    if reply.startswith("2"):
                        recipients += 1
                        data_reply = data_reply or reply_for(address, "d")
                elif verb == "DATA":
                    if not recipients:
                        await send("554 5.5.1 No valid recipients")
                        continue
                    await send("354 End data with <CR><LF>.<CR><LF>")
                    while True:
                        body = await reader.readline()
                        if not body or body in (b".\r\n", b".\n"):
                            break
                    if data_reply:
                        reply = data_reply
                    else:
                        with self._lock:
                            self.accepted += 1
                            number = self.accepted
                        reply = f"250 2.0.0 Ok: queued as E2E{number:05d}"
                    with self._lock:
                        self.data_replies.append(reply)
                    await send(reply)
                    recipients, data_reply = 0, ""
                elif verb == "RSET":
                    recipients, data_reply = 0, ""
                    await send("250 2.0.0 Ok")
                elif verb == "NOOP":
                    await send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    await send("221 2.0.0 Bye")
                    break
                else:
                    await send("502 5.5.2 Command not implemented")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
