"""The Exim cases: which codes the suite makes Exim log, and how it drives the daemon.

The messages and their order are the Postfix scenario's, and the remote codes are the same;
what differs is what Exim writes. Exim logs a remote server's reply as it was given (a 450
with no enhanced code stays code-less, where Postfix writes dsn=4.0.0), and its own failures
carry no enhanced code at all: an unknown user is "Unrouteable address", a full mailbox a
deferral ("mailbox is full") that the quota retry rule turns straight into "retry timeout
exceeded", a connection refused is "defer (111): Connection refused", a local delivery
"=> inbox <inbox@...>" with no C="..." part. Those are counted with code "none".

Where the text Exim logs starts with an enhanced code and no 3-digit reply (an ACL's
`message = 5.7.1 ...`, `defer message = 4.2.0 ...`, a `:fail: 5.1.6 ...` alias, a `:defer: 4.3.0 ...`
router), that code is counted: the exact comparison of the counts fails if any of these cases
is counted under code "none".

Expiry: the retry rule for every other error is F,RETRY_CUTOFF,1s. Deferred messages wait
until they have been failing for longer than that; then `exim -qff` tries each once more
(deferred again) and gives up ("** address: retry timeout exceeded", counted as expired, code 4.4.7).
Each failure sends a bounce message to the sender, delivered locally ("=> sender <...>").
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.exim import EximServer, wait_settled
from tests.e2e.scenario import (
    BOUNCED, DEFERRED, DELIVERED, DROP_DOMAIN, EXPIRED, LOCAL_DOMAIN, NONE, REFUSED_DOMAIN, REJECTED,
    REMOTE_DOMAIN, SENDER, Case, send_case,
)

RETRY_CUTOFF = 6  # seconds; see the module docstring
NOTICE = (NONE, DELIVERED)  # the bounce message, delivered to the sender's mailbox file
EXPIRY = ("4.4.7", EXPIRED)   # "** address: retry timeout exceeded" names no code; counted as 4.4.7 like Postfix's expiries


def _remote_bounce(reply: str, code: str, name: str, stage: str = "r") -> Case:
    after = "end of data" if stage == "d" else "RCPT TO:"
    return Case(name, f"{stage}{reply}-{code}@{REMOTE_DOMAIN}", ((code, BOUNCED), NOTICE),
                log_marks=(f"SMTP error from remote mail server after {after}", f": {reply} {code} "))


def _deferral(local: str, domain: str, code: str, name: str, said: str) -> Case:
    return Case(name, f"{local}@{domain}", ((code, DEFERRED), (code, DEFERRED), EXPIRY, NOTICE),
                log_marks=(said, "retry timeout exceeded"), expires=True)


CASES: list[Case] = [
    # The cases that expire come first, so they age while the others run.
    _deferral("nobody", REFUSED_DOMAIN, NONE, "connection refused by a closed loopback port",
              "defer (111): Connection refused"),
    _deferral("r451-4.7.1", REMOTE_DOMAIN, "4.7.1", "remote: greylisted", ": 451 4.7.1 "),
    _deferral("r452-4.2.2", REMOTE_DOMAIN, "4.2.2", "remote: mailbox full, temporary", ": 452 4.2.2 "),
    _deferral("r450", REMOTE_DOMAIN, NONE, "remote: 450 with no enhanced code", ": 450 Requested"),
    _deferral("r421-4.4.2", DROP_DOMAIN, "4.4.2", "remote: 421 and the connection closed", ": 421 4.4.2 "),
    _deferral("busy", LOCAL_DOMAIN, "4.3.0", "a router that defers (:defer: text with a code)",
              "R=busy_defer defer (-1): 4.3.0 "),
    # Exim's own outcomes.
    Case("local delivery to a mailbox file", f"inbox@{LOCAL_DOMAIN}", ((NONE, DELIVERED),),
         log_marks=("=> inbox <inbox@",)),
    Case("unknown local user, refused at RCPT", f"nosuch@{LOCAL_DOMAIN}", ((NONE, REJECTED),),
         log_marks=("rejected RCPT <nosuch@mx.e2e.test>: Unrouteable address",), refused_with=550),
    Case("temporary refusal at RCPT (ACL defer)", f"tempfail@{LOCAL_DOMAIN}", (("4.7.1", REJECTED),),
         log_marks=("temporarily rejected RCPT <tempfail@mx.e2e.test>: 451 4.7.1 ",), refused_with=451),
    # ACL messages with an enhanced code and no 3-digit reply: the code is logged alone.
    Case("ACL defer with message = 4.2.0 ... (greylisting)", f"greylist@{LOCAL_DOMAIN}", (("4.2.0", REJECTED),),
         log_marks=("temporarily rejected RCPT <greylist@mx.e2e.test>: 4.2.0 greylisted",), refused_with=451),
    Case("ACL deny with message = 5.7.1 ...", f"policy@{LOCAL_DOMAIN}", (("5.7.1", REJECTED),),
         log_marks=("rejected RCPT <policy@mx.e2e.test>: 5.7.1 relay not permitted",), refused_with=550),
    Case("ACL deny with message = 5.7.606 ...", f"banned@{LOCAL_DOMAIN}", (("5.7.606", REJECTED),),
         log_marks=("rejected RCPT <banned@mx.e2e.test>: 5.7.606 Access denied",), refused_with=550),
    Case(":fail: alias with a code in its text", f"moved@{LOCAL_DOMAIN}", (("5.1.6", BOUNCED), NOTICE),
         log_marks=("** moved@mx.e2e.test R=moved_alias: 5.1.6 this mailbox has moved",)),
    Case("relay denied to a client outside relay_from_hosts", "someone@example.net", (("5.7.1", REJECTED),),
         log_marks=("rejected RCPT <someone@example.net>: 554 5.7.1 ",), refused_with=554,
         source_address="127.0.0.2"),
    Case("message too big (SIZE over message_size_limit)", f"inbox@{LOCAL_DOMAIN}", ((NONE, REJECTED),),
         log_marks=("rejected MAIL FROM:<sender@mx.e2e.test>", "message too big"), refused_with=552,
         size_option=10_000_000),
    Case("mailbox full (appendfile quota)", f"full@{LOCAL_DOMAIN}", ((NONE, DEFERRED), EXPIRY, NOTICE),
         log_marks=("mailbox is full",)),
    Case("alias loop (the repeated alias is skipped: unrouteable)", f"loop-a@{LOCAL_DOMAIN}",
         ((NONE, BOUNCED), NOTICE), log_marks=("** loop-a@mx.e2e.test: Unrouteable address",)),
    # Codes the remote server (the responder) replies with.
    Case("accepted by the remote server", f"ok@{REMOTE_DOMAIN}", (("2.0.0", DELIVERED),),
         log_marks=('C="250 2.0.0 Ok: queued as',)),
    _remote_bounce("550", "5.1.1", "remote: unknown user"),
    _remote_bounce("550", "5.7.606", "remote: Microsoft banned sending IP"),
    _remote_bounce("554", "5.4.6", "remote: routing loop"),
    _remote_bounce("552", "5.3.4", "remote: message too big"),
    _remote_bounce("554", "5.7.1", "remote: refused after DATA", stage="d"),
]


def run(server: EximServer) -> None:
    """Offer every case's message, wait for each to settle, then make the deferred ones expire."""
    last_deferral = time.monotonic()
    deferred = 0
    for index, case in enumerate(CASES):
        send_case(server.smtp_port, SENDER, index, case)
        if case.expires:
            deferred += 1
            last_deferral = time.monotonic()
        wait_settled(server, deferred)
    # Wait a little past the retry cutoff, then one forced queue run.
    time.sleep(max(0.0, last_deferral + RETRY_CUTOFF + 1.5 - time.monotonic()))
    server.force_queue_run()
    wait_settled(server, 0)


def start(server_root: Path, responder_port: int, drop_port: int, closed_port: int, smtp_port: int) -> EximServer:
    """A started EximServer with this scenario's routes and retry cutoff."""
    routes = {REMOTE_DOMAIN: responder_port, DROP_DOMAIN: drop_port, REFUSED_DOMAIN: closed_port}
    return EximServer(server_root, smtp_port, routes, retry_cutoff=f"{RETRY_CUTOFF}s").start()
