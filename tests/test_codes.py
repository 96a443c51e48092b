"""RFC 3463 validation and extraction (exporter/codes.py).

Real log lines below are quoted verbatim from the public corpus in
/work/shared/eval/public-corpus (provenance in its SOURCES.md); each carries its file and
line number. The qmail-send lines come from a qmail log pasted into a linux-kernel mailing
list post of November 2004 (tai64n stamps @40000000419f13a5...; the mail client had wrapped
them, the breaks are removed). Reply fragments written by hand say which server writes them
that way.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.codes import find_code, is_valid_code

VALID = ["2.0.0", "2.1.5", "4.4.7", "5.1.1", "5.7.26", "5.7.606", "4.7.500", "5.999.999", "4.0.0", "5.10.100"]

INVALID = [
    "5.01.1", "4.1234.1", "1.2.3", "9.9.9", "5.7", "05.1.1",   # the brief's list
    "5.1.01", "5.1.1000", "3.1.1", "6.1.1", "0.0.0", "5..1", "5.1.", ".1.1", "5.1.1.1",
    "X.1.1", "5.1.1 ", " 5.1.1", "5.1.1\n", "", "5-1-1", "５.1.1", "5.1.1a",
]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_are_accepted(code: str) -> None:
    assert is_valid_code(code) is True


@pytest.mark.parametrize("text", INVALID)
def test_invalid_codes_are_rejected(text: str) -> None:
    assert is_valid_code(text) is False


# (reply text as a server writes it, the code in it)
IN_REPLY_TEXT = [
    ("550 5.1.1 <x@example.com>: Recipient address rejected: User unknown", "5.1.1"),  # Postfix
    ("550-5.7.26 This mail is unauthenticated, which poses a security risk", "5.7.26"),  # Gmail continuation line
    ("Remote host said: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", "5.7.1"),  # qmail
    ("(#5.1.1)", "5.1.1"),                                            # qmail bounce
    ("2.1.5Recipient OK", "2.1.5"),                                    # Exchange, no space
    ("250 2.6.0 <id@host> [InternalId=1] Queued mail for delivery", "2.6.0"),  # Exchange
    ("5.7.606", "5.7.606"),
    ("550 5.7.606-649 Access denied, banned sending IP [192.0.2.1]", "5.7.606"),  # Exchange Online range
    ("dsn=4.4.2, status=deferred", "4.4.2"),                          # Postfix dsn= field
    ("550+5.7.1+Unable+to+relay", "5.7.1"),                           # IIS SMTP W3C log (spaces as +)
    ("LED=550 4.4.7 QUEUE.Expired; message expired", "4.4.7"),        # Exchange tracking recipient-status
    ("smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound", "5.1.10"),     # Exchange DSN diagnostic
    ("host mx.example.com[192.0.2.7] said: 452 4.2.2 Mailbox full.", "4.2.2"),
]


@pytest.mark.parametrize(("text", "code"), IN_REPLY_TEXT)
def test_find_code_in_reply_text(text: str, code: str) -> None:
    assert find_code(text) == code


TRAPS = [
    "10.5.1.1",                     # IP address
    "5.1.1.4",                      # IP address starting like a code
    "relay=[2.180.185.27]",         # IP starting with a class digit
    "v5.1.1",                       # version
    "3.7.11",                       # version
    "postfix-3.5.1",                # package version
    "exim-4.5.1 started",           # package version with a class-like major
    "<expired-4.7.0@host>",         # message-id
    "20240101.5.1.1@x",             # message-id / date stamp
    "<5.1.1@example.com>",          # message-id made of a code
    "/usr/lib/4.4.1/x",             # path
    "::ffff:5.1.1.1",               # IPv4-mapped IPv6
    "550 1.2.3 <x>",                # class 1 is not a class
    "5.01.1 5.7 05.1.1 4.1234.1",   # malformed only
]


@pytest.mark.parametrize("text", TRAPS)
def test_find_code_ignores_numbers_that_are_not_codes(text: str) -> None:
    assert find_code(text) is None


# Whole log lines from the public corpus: (file:line, line, the code find_code gives).
REAL_LINES = [
    ("fail2ban/postfix:37",
     "Dec 21 21:17:30 xxx postfix/smtpd[7150]: NOQUEUE: reject: RCPT from badserver.example.com"
     "[93.184.216.34]: 450 4.7.25 Client host rejected: cannot find your hostname, [93.184.216.34]; "
     "from=<badactor@example.com> to=<goodguy@example.com> proto=ESMTP helo=<badserver.example.com>",
     "4.7.25"),
    ("fail2ban/sendmail-reject:13",
     "Feb 23 07:57:28 petermurray sm-mta[6519]: s1N7vR47006519: ruleset=check_rcpt, "
     "arg1=<camila.pinto@camilopinto.pt>, relay=[2.180.185.27], reject=553 5.1.8 "
     "<camila.pinto@camilopinto.pt>... Domain of sender address camila.pinto@andrewweitzman.com does not exist",
     "5.1.8"),
    ("fail2ban/sendmail-reject:34",
     "Feb 24 01:46:44 petermurray sm-mta[24422]: ruleset=check_relay, arg1=leased-line-54-82.telecom.by, "
     "arg2=217.21.54.82, relay=leased-line-54-82.telecom.by [217.21.54.82], reject=421 4.3.2 "
     "Connection rate limit exceeded.",
     "4.3.2"),
    ("fail2ban/oracleims:13",
     '<co ts="2014-06-02T22:02:13.94" pi="72a9.3b4.3774" sc="tcp_submit" dr="+" ac="U" '
     'tr="TCP|192.245.12.223|465|23.122.129.179|60766" ap="SMTP/TLS-128-RC4" '
     'mi="Authentication successful - switched to channel tcp_submit" us="jaugustine@example.org" '
     'di="235 2.7.0 LOGIN authentication successful."/>',
     "2.7.0"),
    ("exim/0622:11",
     "1999-03-02 09:44:33 10HmbB-000000005vi-0000 == b@test.ex <B@test.ex> R=client T=send_to_server "
     "defer (-44) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<B@test.ex>: "
     "452 4.5.3 Try again",
     "4.5.3"),
    ("fail2ban/exim-spam:7",
     "2004-01-18 07:15:35 1Ai79e-0000Dq-8i F=uzwltcmwto24@melissacam.biz "
     "H=lsanca1-ar3-4-47-028-040.lsanca1.elnk.dsl.genuity.net [4.47.28.40] P=smtp rejected by "
     "local_scan(): Rejected: hits=7.5 required=5.0 trigger=5.0",
     None),
    ("postfix_exporter/mail.log:48",
     "Jan 1 00:00:00 hostname postfix/lmtp[12345]: 123456789AB: to=<user@example.com>, "
     "relay=example.com[path], delay=0.12, delays=0.12/0.12/0.12/0.12, dsn=1.2.3, "
     "status=sent (250 2.0.0 Ok: queued as aaaaaaaaaaaaa)",
     "2.0.0"),
    ("qmail-send, lkml 2004: delivery 5",
     "@40000000419f13a508f3214c delivery 5: failure: 130.57.1.11_does_not_like_recipient./"
     "Remote_host_said:_550_5.1.1_<andrea@novell.com>_is_not_a_valid_mailbox._550_No_such_recipient/"
     "Giving_up_on_130.57.1.11./",
     "5.1.1"),
    ("qmail-send, lkml 2004: delivery 6",
     "@40000000419f13a63041b8bc delivery 6: success: (linux-kernel@vger.kernel.org)_12.107.209.244_"
     "accepted_message./Remote_host_said:_250_2.7.0_nothing_apparently_wrong_in_the_message.;_S261490AbUKTJvY/",
     "2.7.0"),
    ("qmail-send, lkml 2004: delivery 9",
     "@40000000419f13a41cea7d1c delivery 9: success: (tglx@linutronix.de)_213.239.205.147_accepted_message./"
     "Remote_host_said:_250_Ok:_queued_as_1D47365C044/",
     None),
    ("postfix_exporter/mail.log:49",
     "2023-02-01T01:02:04.123456+00:00 hostname postfix/lmtp[12345]: 123456789AB: to=<user@example.com>, "
     "relay=example.com[123.45.67.89]:25, delay=1.23, delays=1.23/1.23/1.23/1.23, dsn=1.2.3, "
     "status=bounced (123 #1.2.3 Reasons)",
     None),
]


@pytest.mark.parametrize(("where", "line", "code"), REAL_LINES, ids=[r[0] for r in REAL_LINES])
def test_find_code_on_real_log_lines(where: str, line: str, code: str | None) -> None:
    assert find_code(line) == code


_number = st.one_of(st.just(0), st.integers(min_value=1, max_value=999))


@given(cls=st.sampled_from("245"), subject=_number, detail=_number)
def test_every_well_formed_code_is_valid_and_found(cls: str, subject: int, detail: int) -> None:
    code = f"{cls}.{subject}.{detail}"
    assert is_valid_code(code)
    assert find_code(f"550 {code} reason") == code
    assert find_code(f"550-{code} reason") == code
    assert find_code(f"(#{code})") == code
    assert find_code(f"Remote_host_said:_550_{code}_reason/") == code


@given(st.tuples(*[st.integers(min_value=0, max_value=255)] * 4))
def test_no_ipv4_address_gives_a_code(octets: tuple[int, int, int, int]) -> None:
    ip = ".".join(map(str, octets))
    assert find_code(ip) is None
    assert find_code(f"relay=mx.example.com[{ip}]:25, delay=1") is None
    assert find_code(f"H=host [{ip}] P=esmtp") is None


@settings(max_examples=300)
@given(st.text())
def test_find_code_never_raises_and_returns_only_valid_codes(text: str) -> None:
    found = find_code(text)
    assert found is None or is_valid_code(found)
    assert is_valid_code(text) in (True, False)
