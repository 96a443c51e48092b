"""Pairs SMTP replies with the commands they answer, for the protocol-log parsers.

Part of the parser stage. Exchange SMTP send logs and IIS SMTP outbound logs record a
dialogue: our commands, then the remote server's replies, possibly pipelined (several
commands sent before the first reply arrives). A reply alone does not say what it
answers, so a Dialogue keeps, per session, the commands still waiting for a reply in
order, and decides which replies are delivery outcomes:

  reply to MAIL FROM, 4xx/5xx        one deferred/bounced event (the message is refused whole)
  reply to RCPT TO, 4xx/5xx          one deferred/bounced event for that recipient
  reply to RCPT TO, 2xx              no event yet: the recipient waits for the end of data
  final reply to DATA / BDAT LAST    one event per accepted recipient: delivered, deferred
                                     or bounced by the reply's class
  greeting or EHLO/HELO refused      one deferred/bounced event (the connection attempt)
  STARTTLS, AUTH, QUIT and every other reply, and 2xx greetings: no event

so one delivery attempt of one recipient is one event. For logs of our own answers to
clients (Exchange receive logs) the same pairing applies with ours=True: each 4xx/5xx
answer to the connection, EHLO/HELO, MAIL, RCPT, DATA/end of data or BDAT is one
rejected event, and accepted
messages give none (they are counted where they are delivered).
"""

from __future__ import annotations

from collections import deque

from exporter.events import BOUNCED, DEFERRED, DELIVERED, REJECTED

# What a reply can answer: the verbs that matter, and a marker for the end of the data.
END_OF_DATA = "END-OF-DATA"
_TRANSACTION = frozenset({"MAIL", "RCPT", "DATA", "BDAT", END_OF_DATA})
# A refusal here ends the connection's chance to carry mail: "" is the greeting.
_OPENING = frozenset({"", "EHLO", "HELO", "LHLO"})
_MAX_SESSIONS = 20000


class _Session:
    __slots__ = ("pending", "accepted")

    def __init__(self) -> None:
        self.pending: deque[str] = deque()
        self.accepted = 0


def command_verb(text: str) -> str:
    """The verb of a logged command: "RCPT TO:<a@b>" -> "RCPT", "BDAT 2048 LAST" -> END_OF_DATA."""
    words = text.split(None, 3)
    if not words:
        return ""
    verb = words[0].upper()
    if verb == "BDAT" and words[-1].upper() == "LAST":
        return END_OF_DATA
    return verb


class Dialogue:
    """The commands waiting for replies, per session; fed in log order."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}

    def _session(self, key: str) -> _Session:
        session = self._sessions.get(key)
        if session is None:
            if len(self._sessions) >= _MAX_SESSIONS:
                # Sessions whose end was never logged: forget the oldest.
                del self._sessions[next(iter(self._sessions))]
            session = self._sessions[key] = _Session()
        return session

    def command(self, key: str, verb: str) -> None:
        """A command was sent in session key."""
        pending = self._session(key).pending
        if pending and pending[0] == "AUTH":
            return  # the client's side of an AUTH exchange, not a new command
        pending.append(verb)

    def end(self, key: str) -> None:
        """The session's connection closed."""
        self._sessions.pop(key, None)

    def reply(self, key: str, reply: str, ours: bool = False) -> tuple[str, int] | None:
        """(outcome, how many events) for a reply in session key, or None for no event.

        ours: the reply is our answer to a client (a receive log), not a remote server's.
        """
        session = self._session(key)
        pending = session.pending
        verb = pending[0] if pending else ""
        first = reply[:1]
        if first == "3":
            if verb == "DATA":
                pending[0] = END_OF_DATA  # 354: the next reply ends the data
            return None  # 334 and other intermediate replies: the command still waits
        if pending:
            pending.popleft()
        if first not in "245" or (verb not in _TRANSACTION and verb not in _OPENING):
            return None
        if ours:
            return (REJECTED, 1) if first != "2" else None
        if verb in _OPENING:
            return (DEFERRED if first == "4" else BOUNCED, 1) if first != "2" else None
        if first == "2":
            if verb == "RCPT":
                session.accepted += 1
            elif verb == END_OF_DATA:
                count = max(session.accepted, 1)
                session.accepted = 0
                return DELIVERED, count
            elif verb == "MAIL":
                session.accepted = 0
            return None
        outcome = DEFERRED if first == "4" else BOUNCED
        if verb in ("MAIL", "RCPT"):
            return outcome, 1
        count = max(session.accepted, 1)  # DATA, BDAT or end of data refused
        session.accepted = 0
        return outcome, count

