"""Policy helpers that sit beside an MTA: which syslog programs they are, and why they give no event.

Part of the parser stage, used by the generic fallback (exporter/parsers/generic.py), which is
handed every candidate line of a program no other message parser claims. The helpers below
decide about a message for the MTA (a Postfix policy service, a milter, a content filter):

    policyd-spf     "prepend Received-SPF: ...", "Action: prepend: Text: ... Reject action: 550 5.7.23"
                    (the configured reply, quoted), "550 5.7.23 Message rejected due to: SPF fail"
    postgrey        "action=greylist, reason=new, client_name=..."
    opendkim, opendmarc, dkimpy-milter, rspamd, spamd, spamc, amavis, clamsmtp, postfwd,
    policyd-weight, sqlgrey, milter-greylist, ...

What they log is their verdict, or their configuration, never the reply that went out: the
MTA writes that itself, once, for the message (Postfix's "NOQUEUE: reject: RCPT from ...: 550
5.7.23 ..." or "milter-reject: ...", Exim's "rejected RCPT ...", sendmail's "Milter: ...
reject=550 5.7.1 ..."), and that line is counted by the MTA's parser. Counting the helper's
line as well would count every refusal twice, and counting its quoted configuration ("Reject
action: 550 5.7.23" on a line that says the message was accepted with a header prepended)
would count refusals that never happened. So their lines are ignored on purpose.
"""

from __future__ import annotations

# Syslog program names, as the helpers' packages log them (Debian's and upstream defaults).
PROGRAMS: frozenset[str] = frozenset({
    "policyd-spf", "policyd-spf-perl", "spf-engine", "postfix-policyd-spf-perl",
    "postgrey", "sqlgrey", "milter-greylist", "policyd-weight", "postfwd", "postfwd2", "policyd",
    "opendkim", "opendmarc", "dkimpy-milter", "openarc",
    "amavis", "amavisd", "amavisd-new", "amavisd-milter",
    "rspamd", "rspamc", "spamd", "spamc", "spamass-milter", "spampd",
    "clamsmtp", "clamsmtpd", "clamav-milter", "clamd",
    "mimedefang", "mimedefang-multiplexor", "dspam", "bogofilter",
})


def is_policy_helper(program: str) -> bool:
    """True for the syslog name of a policy helper listed above (case as logged)."""
    return program in PROGRAMS
