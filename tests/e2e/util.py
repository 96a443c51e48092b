"""Small helpers the end-to-end suite shares: templates, ports, waiting, sending mail."""

from __future__ import annotations

import smtplib
import socket
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

TEMPLATES = Path(__file__).resolve().parent / "templates"


def fill_template(name: str, values: dict[str, str]) -> str:
    """A template from templates/ with each @@KEY@@ replaced; a placeholder left over is an error."""
    text = (TEMPLATES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        start = text.index("@@")
        raise ValueError(f"{name}: no value for {text[start:text.index('@@', start + 2) + 2]}")
    return text


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll check() until it is true; TimeoutError names what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    if not check():
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def wait_for_port(port: int, timeout: float) -> None:
    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, f"127.0.0.1:{port} to accept connections")


def make_message(sender: str, recipient: str, tag: str, size: int = 0) -> EmailMessage:
    """A test message whose Message-ID and Subject hold code-like text that must not be counted."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"e2e {tag}: status 5.1.1 then 4.4.7, expired-4.7.0 (not a status line)"
    msg["Message-ID"] = f"<e2e.{tag}.expired-4.7.0.550-5.1.1@e2e.test>"
    msg.set_content("A message from the ndr-exporter end-to-end suite.\n" + "x" * size)
    return msg


def smtp_send(port: int, sender: str, recipient: str, tag: str, *,
              source_address: str | None = None, size_option: int | None = None) -> tuple[int, str]:
    """Offer one message over SMTP; returns the reply (code, text) of the step that ended it.

    A refusal is a result, not an error: (550, "5.1.1 ...") when RCPT was refused, say.
    size_option declares SIZE= on MAIL FROM without sending that much.
    """
    source = (source_address, 0) if source_address else None
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.e2e.test", timeout=30,
                      source_address=source) as smtp:
        smtp.ehlo()
        options = [f"SIZE={size_option}"] if size_option is not None else []
        code, text = smtp.mail(sender, options)
        if code >= 400:
            return code, text.decode(errors="replace")
        code, text = smtp.rcpt(recipient)
        if code >= 400:
            return code, text.decode(errors="replace")
        code, text = smtp.data(make_message(sender, recipient, tag).as_bytes())
        return code, text.decode(errors="replace")
