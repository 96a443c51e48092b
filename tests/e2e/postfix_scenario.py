"""The Postfix cases: which codes the suite makes Postfix log, and how it drives the instance.

Each message goes in over SMTP to the instance's smtpd, one recipient each, and the next one
waits until the queue has settled, so that one case's trouble never spills into another's.
The instance runs with a queue lifetime of QUEUE_LIFETIME seconds and retries nothing by
itself within it (minimal_backoff_time is 300s). Messages that were deferred wait in the
deferred queue until they are older than that; then `postqueue -f` has each tried once more
(deferred again) and, being too old, returned to the sender (status=expired).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.postfix import HOSTNAME, PostfixServer, wait_settled
from tests.e2e.scenario import (
    BOUNCED, DEFERRED, DELIVERED, DROP_DOMAIN, EXPIRED, REFUSED_DOMAIN, REJECTED, REMOTE_DOMAIN, SENDER,
    VERIFIED, VERIFY_DOMAIN, VERIFY_FAILED, Case, send_case,
)
from tests.e2e.util import wait_until

QUEUE_LIFETIME = 6               # seconds; see the module docstring

NOTICE = ("2.0.0", DELIVERED)  # the bounce notice, delivered to the sender's mailbox file
# qmgr's "status=expired, returned to sender" logs no code; the project counts it as 4.4.7,
# the registered code for a message that stayed queued too long (exporter/parsers/postfix.py).
EXPIRY = ("4.4.7", EXPIRED)


def _remote_bounce(reply: str, code: str, name: str, stage: str = "r") -> Case:
    return Case(name, f"{stage}{reply}-{code}@{REMOTE_DOMAIN}", ((code, BOUNCED), NOTICE),
                log_marks=(f"dsn={code}, status=bounced", f"said: {reply} {code} "))


def _remote_deferral(local: str, domain: str, code: str, name: str, said: str) -> Case:
    return Case(name, f"{local}@{domain}",
                ((code, DEFERRED), (code, DEFERRED), EXPIRY, NOTICE),
                log_marks=(f"dsn={code}, status=deferred", said), expires=True)


CASES: list[Case] = [
    # The cases that expire come first, so they age while the others run.
    _remote_deferral("nobody", REFUSED_DOMAIN, "4.4.1", "connection refused by a closed loopback port",
                     "Connection refused"),
    _remote_deferral("r451-4.7.1", REMOTE_DOMAIN, "4.7.1", "remote: greylisted", "said: 451 4.7.1 "),
    _remote_deferral("r452-4.2.2", REMOTE_DOMAIN, "4.2.2", "remote: mailbox full, temporary",
                     "said: 452 4.2.2 "),
    # A 4xx with no enhanced code: Postfix fills in dsn=4.0.0 from the reply's first digit.
    _remote_deferral("r450", REMOTE_DOMAIN, "4.0.0", "remote: 450 with no enhanced code", "said: 450 Requested"),
    _remote_deferral("r421-4.4.2", DROP_DOMAIN, "4.4.2", "remote: 421 and the connection closed",
                     "said: 421 4.4.2 "),
    # Postfix's own codes.
    Case("local delivery to a mailbox file", f"inbox@{HOSTNAME}", (("2.0.0", DELIVERED),),
         log_marks=("dsn=2.0.0, status=sent (delivered to file:",)),
    Case("unknown local user, refused by smtpd", f"nosuch@{HOSTNAME}", (("5.1.1", REJECTED),),
         log_marks=("NOQUEUE: reject: RCPT", "550 5.1.1 <nosuch@"), refused_with=550),
    Case("temporary refusal at RCPT (access map)", f"tempfail@{HOSTNAME}", (("4.7.1", REJECTED),),
         log_marks=("NOQUEUE: reject: RCPT", "451 4.7.1 <tempfail@"), refused_with=451),
    Case("relay denied to a client outside mynetworks", "someone@example.net", (("5.7.1", REJECTED),),
         log_marks=("554 5.7.1 <someone@example.net>: Relay access denied",), refused_with=554,
         source_address="127.0.0.2"),
    Case("message too big (SIZE over message_size_limit)", f"inbox@{HOSTNAME}", (("5.3.4", REJECTED),),
         log_marks=("552 5.3.4 Message size exceeds fixed limit",), refused_with=552,
         size_option=10_000_000),
    Case("mailbox full (mailbox_size_limit)", f"full@{HOSTNAME}", (("5.2.2", BOUNCED), NOTICE),
         log_marks=("dsn=5.2.2, status=bounced", "File too large")),
    Case("alias forwarding loop", f"loop-a@{HOSTNAME}", (("5.4.6", BOUNCED), NOTICE),
         log_marks=("dsn=5.4.6, status=bounced (alias database loop",)),
    # Codes the remote server (the responder) replies with.
    Case("accepted by the remote server", f"ok@{REMOTE_DOMAIN}", (("2.0.0", DELIVERED),),
         log_marks=("status=sent (250 2.0.0 Ok: queued as",)),
    _remote_bounce("550", "5.1.1", "remote: unknown user"),
    _remote_bounce("550", "5.7.606", "remote: Microsoft banned sending IP"),
    _remote_bounce("554", "5.4.6", "remote: routing loop"),
    _remote_bounce("552", "5.3.4", "remote: message too big"),
    _remote_bounce("554", "5.7.1", "remote: refused after DATA", stage="d"),
    # Address verification (reject_unverified_recipient for VERIFY_DOMAIN, main.cf): smtpd asks
    # verify(8), which sends a probe to the responder; the probe's result is logged by smtp(8) as
    # status=deliverable / undeliverable, a verified / verify_failed event and nothing else.
    Case("verify probe accepted, then the message delivered", f"probe-ok@{VERIFY_DOMAIN}",
         (("2.1.5", VERIFIED), ("2.0.0", DELIVERED)),
         log_marks=("dsn=2.1.5, status=deliverable (250 2.1.5 ", "status=sent (250 2.0.0 Ok: queued as")),
    Case("verify probe refused 550 5.1.1, smtpd refuses the recipient", f"r550-5.1.1@{VERIFY_DOMAIN}",
         (("5.1.1", VERIFY_FAILED), ("5.1.1", REJECTED)),
         log_marks=("dsn=5.1.1, status=undeliverable (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 ",
                    "550 5.1.1 <r550-5.1.1@verify.test>: Recipient address rejected: undeliverable address"),
         refused_with=550),
    # A probe refused for now: smtpd answers unverified_recipient_defer_code (450) with its own
    # 4.1.1, not the 4.2.1 the probe was given (Postfix 3.7.11, as logged).
    Case("verify probe refused 450 4.2.1, smtpd defers the recipient", f"r450-4.2.1@{VERIFY_DOMAIN}",
         (("4.2.1", VERIFY_FAILED), ("4.1.1", REJECTED)),
         log_marks=("dsn=4.2.1, status=undeliverable (host 127.0.0.1[127.0.0.1] said: 450 4.2.1 ",
                    "450 4.1.1 <r450-4.2.1@verify.test>: Recipient address rejected: unverified address"),
         refused_with=450),
]


def run(server: PostfixServer) -> None:
    """Offer every case's message, wait for each to settle, then make the deferred ones expire."""
    last_deferral = time.monotonic()
    for index, case in enumerate(CASES):
        send_case(server.smtpd_port, SENDER, index, case)
        if case.expires:
            last_deferral = time.monotonic()
        wait_settled(server)
    deferred = sum(case.expires for case in CASES)
    if server.queued("deferred") != deferred:
        raise AssertionError(f"{server.queued('deferred')} messages deferred, expected {deferred}:\n"
                             + server.log_text()[-3000:])
    # Postfix compares whole seconds: wait a little past the lifetime, then retry them all.
    time.sleep(max(0.0, last_deferral + QUEUE_LIFETIME + 1.5 - time.monotonic()))
    server.flush()
    wait_until(lambda: server.queued("deferred") == 0, timeout=30, what="the deferred messages to expire")
    wait_settled(server)


def start(server_root: Path, responder_port: int, drop_port: int, closed_port: int, smtpd_port: int) -> PostfixServer:
    """A started PostfixServer with this scenario's routes and queue lifetime."""
    routes = {REMOTE_DOMAIN: responder_port, DROP_DOMAIN: drop_port, REFUSED_DOMAIN: closed_port,
              VERIFY_DOMAIN: responder_port}
    return PostfixServer(server_root, smtpd_port, routes, queue_lifetime=f"{QUEUE_LIFETIME}s",
                         verified_domains=(VERIFY_DOMAIN,)).start()
