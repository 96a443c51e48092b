"""Generate realistic mail logs of a chosen size with a fixed seed, for the benchmark.

Three formats: Postfix syslog (about 30 % status records among connect, cleanup, qmgr
and TLS noise), Exim mainlog, and Exchange message tracking CSV. The code mix has a
heavy head (2.0.0, 4.4.1, 5.1.1 …) and a long tail, as real servers see. Each
generator returns the number of status events it wrote, so the benchmark can check
that every tool it times counted them all.

    python bench/generate.py postfix 2000000 /tmp/postfix.log
"""

from __future__ import annotations

import random
import sys
import time
from typing import Callable, TextIO

START = 1764288000  # 2025-11-28 00:00:00 UTC

# (code, reply, outcome word, weight): the head of the distribution.
DEFERRALS = [
    ("4.4.1", None, "connect to {mx}[{ip}]:25: Connection timed out", 30),
    ("4.7.28", "421", "host {mx}[{ip}] said: 421-4.7.28 Unusual rate of unsolicited mail from your IP (in reply to end of DATA command)", 12),
    ("4.7.0", "450", "host {mx}[{ip}] said: 450 4.7.0 Temporarily deferred, try again later (in reply to RCPT TO command)", 10),
    ("4.2.2", "452", "host {mx}[{ip}] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)", 6),
    ("4.4.2", None, "lost connection with {mx}[{ip}] while sending end of data -- message may be sent more than once", 5),
    ("4.7.1", "451", "host {mx}[{ip}] said: 451 4.7.1 Greylisted, please try again later (in reply to RCPT TO command)", 8),
    ("4.3.0", "451", "host {mx}[{ip}] said: 451 4.3.0 Temporary system error (in reply to end of DATA command)", 2),
]
BOUNCES = [
    ("5.1.1", "550", "host {mx}[{ip}] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown (in reply to RCPT TO command)", 40),
    ("5.7.1", "554", "host {mx}[{ip}] said: 554 5.7.1 Message rejected as spam (in reply to end of DATA command)", 15),
    ("5.7.606", "550", "host {mx}[{ip}] said: 550 5.7.606 Access denied, banned sending IP [{ip}] (in reply to MAIL FROM command)", 4),
    ("5.2.2", "552", "host {mx}[{ip}] said: 552 5.2.2 Mailbox quota exceeded (in reply to RCPT TO command)", 6),
    ("5.4.6", None, "mail forwarding loop for {rcpt}", 1),
    ("5.7.26", "550", "host {mx}[{ip}] said: 550-5.7.26 Unauthenticated email is not accepted from this domain (in reply to end of DATA command)", 5),
    ("5.4.4", None, "Host or domain name not found. Name service error for name={dom} type=MX: Host not found", 4),
    ("5.3.4", "552", "host {mx}[{ip}] said: 552 5.3.4 Message size exceeds fixed limit (in reply to end of DATA command)", 2),
]
TAIL_SUBJECTS = ["1", "2", "3", "4", "5", "6", "7"]
DOMAINS = [("gmail.com", "gmail-smtp-in.l.google.com"), ("outlook.com", "outlook-com.olc.protection.outlook.com"),
           ("yahoo.com", "mta7.am0.yahoodns.net"), ("icloud.com", "mx01.mail.icloud.com"),
           ("example.org", "mx.example.org"), ("example.net", "mail.example.net"), ("corp.example", "mx1.corp.example")]
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _pick(rng: random.Random, table: list) -> tuple:
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def _tail_code(rng: random.Random, cls: str) -> str:
    """A long-tail code: any subject, a detail that is often unregistered."""
    return f"{cls}.{rng.choice(TAIL_SUBJECTS)}.{rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 25])}"


def _qid(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(10))


def _base62(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(BASE62) for _ in range(n))


def _ip(rng: random.Random) -> str:
    return f"203.0.113.{rng.randrange(1, 255)}"


class Clock:
    """Log time that advances a little with every line."""

    def __init__(self, seconds_per_line: float) -> None:
        self.t = float(START)
        self.step = seconds_per_line

    def tick(self) -> float:
        self.t += self.step
        return self.t


def postfix(out: TextIO, lines: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    clock = Clock(86400 / max(lines, 1))
    events = 0
    for _ in range(lines):
        tm = time.gmtime(clock.tick())
        prefix = f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} mail01"
        pid = rng.randrange(1000, 60000)
        roll = rng.random()
        qid = _qid(rng)
        client = _ip(rng)
        if roll < 0.30:
            events += 1
            dom, mx = rng.choice(DOMAINS)
            rcpt = f"user{rng.randrange(100000)}@{dom}"
            ip = _ip(rng)
            kind = rng.random()
            delays = f"delay={rng.random() * 5:.2f}, delays=0.01/0/{rng.random():.2f}/{rng.random():.2f}"
            if kind < 0.75:
                line = (f"postfix/smtp[{pid}]: {qid}: to=<{rcpt}>, relay={mx}[{ip}]:25, {delays}, dsn=2.0.0, "
                        f"status=sent (250 2.0.0 OK {int(clock.t)} {qid.lower()} - queued)")
            elif kind < 0.97:
                cls = "4" if kind < 0.88 else "5"
                status = "deferred" if cls == "4" else "bounced"
                if rng.random() < 0.9:
                    code, _reply, text, _w = _pick(rng, DEFERRALS if cls == "4" else BOUNCES)
                    text = text.format(mx=mx, ip=ip, rcpt=rcpt, dom=dom)
                else:
                    code = _tail_code(rng, cls)
                    reply = "451" if cls == "4" else "550"
                    text = f"host {mx}[{ip}] said: {reply} {code} Policy rejection (in reply to RCPT TO command)"
                line = (f"postfix/smtp[{pid}]: {qid}: to=<{rcpt}>, relay={mx}[{ip}]:25, {delays}, dsn={code}, "
                        f"status={status} ({text})")
            else:
                line = (f"postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{client}]: 554 5.7.1 <{rcpt}>: "
                        f"Relay access denied; from=<spam@{dom}> to=<{rcpt}> proto=ESMTP helo=<[{client}]>")
        elif roll < 0.40:
            line = f"postfix/smtpd[{pid}]: connect from unknown[{client}]"
        elif roll < 0.50:
            line = (f"postfix/smtpd[{pid}]: disconnect from unknown[{client}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 "
                    f"commands=5")
        elif roll < 0.58:
            line = f"postfix/smtpd[{pid}]: {qid}: client=unknown[{client}]"
        elif roll < 0.68:
            line = f"postfix/cleanup[{pid}]: {qid}: message-id=<{int(clock.t)}.{qid}.5.1.1@example.org>"
        elif roll < 0.80:
            line = (f"postfix/qmgr[{pid}]: {qid}: from=<news{rng.randrange(1000)}@example.org>, "
                    f"size={rng.randrange(800, 90000)}, nrcpt=1 (queue active)")
        elif roll < 0.92:
            line = f"postfix/qmgr[{pid}]: {qid}: removed"
        else:
            line = (f"postfix/smtp[{pid}]: Trusted TLS connection established to mx.example.org[{client}]:25: "
                    f"TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)")
        out.write(f"{prefix} {line}\n")
    return events


def exim(out: TextIO, lines: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    clock = Clock(86400 / max(lines, 1))
    events = 0
    for _ in range(lines):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clock.tick()))
        mid = f"{_base62(rng, 6)}-{_base62(rng, 6)}-{_base62(rng, 2)}"
        dom, mx = rng.choice(DOMAINS)
        rcpt = f"user{rng.randrange(100000)}@{dom}"
        ip = _ip(rng)
        roll = rng.random()
        if roll < 0.30:
            events += 1
            kind = rng.random()
            if kind < 0.75:
                line = (f"{mid} => {rcpt} R=dnslookup T=remote_smtp H={mx} [{ip}] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 "
                        f"CV=yes C=\"250 2.0.0 OK id={mid}\"")
            elif kind < 0.90:
                code, reply, text, _w = _pick(rng, DEFERRALS)
                reply = reply or "451"
                line = (f"{mid} == {rcpt} R=dnslookup T=remote_smtp defer (-44) H={mx} [{ip}]: SMTP error from "
                        f"remote mail server after RCPT TO:<{rcpt}>: {reply} {code} Try again later")
            else:
                code, reply, text, _w = _pick(rng, BOUNCES)
                reply = reply or "550"
                line = (f"{mid} ** {rcpt} R=dnslookup T=remote_smtp H={mx} [{ip}]: SMTP error from remote mail "
                        f"server after RCPT TO:<{rcpt}>: {reply} {code} Rejected")
        elif roll < 0.55:
            line = (f"{mid} <= news@example.org H=relay.example.org [{ip}] P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 "
                    f"CV=no S={rng.randrange(800, 90000)} id={mid}.4.4.7@example.org")
        elif roll < 0.80:
            line = f"{mid} Completed"
        else:
            line = f"SMTP connection from relay.example.org [{ip}]:{rng.randrange(1024, 65535)} (TCP/IP connection count = 1)"
        out.write(f"{stamp} {line}\n")
    return events


EXCHANGE_FIELDS = ("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
                   "source,event-id,internal-message-id,message-id,network-message-id,recipient-address,"
                   "recipient-status,total-bytes,recipient-count,related-recipient-address,reference,"
                   "message-subject,sender-address,return-path,message-info,directionality,tenant-id,"
                   "original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,schema-version")


def exchange(out: TextIO, lines: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    clock = Clock(86400 / max(lines, 1))
    events = 0
    out.write("#Software: Microsoft Exchange Server\r\n#Version: 15.02.1118.007\r\n"
              "#Log-type: Message Tracking Log\r\n#Date: 2025-11-28T00:00:00.000Z\r\n"
              f"#Fields: {EXCHANGE_FIELDS}\r\n")
    for _ in range(lines - 5):
        t = clock.tick()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
        dom, mx = rng.choice(DOMAINS)
        rcpt = f"user{rng.randrange(100000)}@{dom}"
        ip = _ip(rng)
        imid = rng.randrange(10**6)
        msgid = f"<{imid}.5.4.8@ex01.corp.example>"
        roll = rng.random()
        if roll < 0.30:
            events += 1
            kind = rng.random()
            if kind < 0.75:
                event, status = "SENDEXTERNAL", "250 2.0.0 OK"
            elif kind < 0.90:
                code, reply, _text, _w = _pick(rng, DEFERRALS)
                event, status = "DEFER", f"{reply or '451'} {code} Remote server deferred the message"
            else:
                code, reply, _text, _w = _pick(rng, BOUNCES)
                event, status = "FAIL", f"{reply or '550'} {code} Remote server returned an error; details follow"
            source = "SMTP"
        elif roll < 0.65:
            event, status, source = "RECEIVE", "", "SMTP"
        elif roll < 0.85:
            event, status, source = "AGENTINFO", "", "AGENT"
        else:
            event, status, source = "SUBMIT", "", "STOREDRIVER"
        subject = "Invoice 5.1.1 reminder"
        out.write(f"{stamp},{ip},relay.example.org,{ip},EX01,08DA1234ABCD;250 2.0.0 OK,"
                  f"EX01\\Default EX01,{source},{event},{imid},{msgid},a1b2c3d4-0000-4000-8000-{imid:012d},"
                  f"{rcpt},\"{status}\",{rng.randrange(800, 90000)},1,,,\"{subject}\",news@example.org,"
                  f"news@example.org,,Originating,,,,,Email,a1b2c3d4-{imid:08d},15.02.1118.007\r\n")
    return events


GENERATORS: dict[str, Callable[[TextIO, int, int], int]] = {"postfix": postfix, "exim": exim, "exchange": exchange}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in GENERATORS:
        print("usage: python bench/generate.py postfix|exim|exchange LINES OUTPUT", file=sys.stderr)
        return 2
    with open(argv[2], "w", encoding="utf-8", newline="") as out:
        events = GENERATORS[argv[0]](out, int(argv[1]))
    print(events)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
