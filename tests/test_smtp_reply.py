"""The shared reply reader (exporter/parsers/smtp_reply.py): reads only at the position given."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from exporter.parsers.smtp_reply import code_at, reply_at


def test_reply_and_code_at_the_start():
    assert reply_at("550 5.1.1 <bob@example.net>: no such user") == ("550", "5.1.1")
    assert reply_at("550-5.7.26 Unauthenticated email") == ("550", "5.7.26")
    assert reply_at("421 4.7.0 Try later") == ("421", "4.7.0")
    assert reply_at("250 2.0.0: f6e94209 Message accepted") == ("250", "2.0.0")
    assert reply_at("550 #5.1.1 qmail style") == ("550", "5.1.1")
    assert reply_at("451 Try again later") == ("451", None)
    assert reply_at("452") == ("452", None)


def test_not_a_reply_or_not_a_code():
    assert reply_at("Unrouteable address") == (None, None)
    assert reply_at("5501 x") == (None, None)
    assert reply_at("350 5.1.1 x") == (None, None)        # class 3 is no final reply
    assert reply_at("550 5.01.1 x") == ("550", None)      # leading zero
    assert reply_at("499 4.1234.343 x") == ("499", None)  # detail with four digits
    assert reply_at("550 5.1.1.4 x") == ("550", None)     # a fourth part: an IP-like string
    assert reply_at("550 10.5.1.1 x") == ("550", None)


def test_position_is_respected():
    text = "id=5.1.1 said: 550 5.7.1 blocked"
    assert reply_at(text) == (None, None)
    assert reply_at(text, text.index("550")) == ("550", "5.7.1")
    assert code_at("dsn=5.1.1, stat=x", 4) == "5.1.1"
    assert code_at("dsn=5.1.1, stat=x", 0) is None
    assert code_at("(#4.4.1)", 1) == "4.4.1"
    assert code_at("5.1.10") == "5.1.10"
    assert code_at("5.1.1000") is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=0, max_value=90))
def test_never_raises_and_gives_valid_parts(text, pos):
    reply, code = reply_at(text, pos)
    assert reply is None or (len(reply) == 3 and reply[0] in "245")
    assert code is None or (reply is not None and code[0] in "245")
    single = code_at(text, pos)
    assert single is None or single.count(".") == 2
