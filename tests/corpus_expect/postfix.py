"""Expected events of the Postfix lines in the public corpus (owner: syslog/Postfix parsers).

fail2ban/postfix: every `reject:` / `milter-reject:` line of smtpd and postscreen is one
rejected event; the reply and code are the first two words of the reply text; the remote is
the client name, or its address when the name is "unknown" (postscreen logs only the
address). SASL, pipelining, disconnect and postscreen PREGREET/HANGUP lines carry no status.

postfix_exporter/mail.log: anonymised; every code is the invalid "1.2.3" and every reply the
invalid "123", so each Postfix status line holding one is unparsed, never a counted code.
Line 28 is postscreen's "too many connections" reject (no code at all: counted without one),
line 65 qmgr's "status=expired, returned to sender" (counted as expired, 4.4.7).
"""

FILES = {
    "fail2ban/postfix": {
        "format": "syslog",
        "counts": (203, 26, 177, 0),
        "unparsed": [],
        "events": {
            6: [("postfix", "rejected", "4.7.1", "450", "example.com")],
            8: [("postfix", "rejected", "5.7.1", "554", "1-2-3-4-example.com")],
            10: [("postfix", "rejected", "5.7.1", "554", "foo")],
            12: [("postfix", "rejected", "5.7.1", "554", "192.0.2.236")],
            14: [("postfix", "rejected", "5.7.1", "554", "foo")],
            16: [("postfix", "rejected", "4.1.8", "450", "foo")],
            18: [("postfix", "rejected", "5.1.1", "550", "72-53-132-234.cpe.distributel.net")],
            20: [("postfix", "rejected", "5.1.1", "550", "example.com")],
            23: [("postfix", "rejected", "5.1.1", "550", "example.net")],
            35: [("postfix", "rejected", "4.7.1", "450", "badserver.example.com")],
            37: [("postfix", "rejected", "4.7.25", "450", "badserver.example.com")],
            40: [("postfix", "rejected", "4.1.8", "450", "1-2-3-4.example.com")],
            43: [("postfix", "rejected", "5.5.2", "504", "s271272.static.corbina.ru")],
            46: [("postfix", "rejected", "5.7.1", "550", "66-220-155-151.mail-mail.facebook.com")],
            48: [("postfix", "rejected", "5.5.3", "550", "signing-milter.example.com")],
            51: [("postfix", "rejected", "5.5.2", "504", "192.0.2.116")],
            53: [("postfix", "rejected", "5.7.25", "550", "192.0.2.246")],
            56: [("postfix", "rejected", "5.5.2", "504", "s271272.static.corbina.ru")],
            59: [("postfix", "rejected", "5.5.2", "504", "astra4139.startdedicated.de")],
            62: [("postfix", "rejected", "4.7.1", "450", "1.2.3.4")],
            65: [("postfix", "rejected", "4.7.1", "450", "1.2.3.4")],
            71: [("postfix", "rejected", "5.7.1", "550", "216.245.194.173")],
            74: [("postfix", "rejected", "4.7.25", "450", "192.0.2.114")],
            93: [("postfix", "rejected", "4.7.1", "454", "badguy.example.com")],
            96: [("postfix", "rejected", "4.7.1", "454", "badguy.example.com")],
            99: [("postfix", "rejected", "5.7.1", "554", "87.236.233.182")],
        },
    },
    "postfix_exporter/mail.log": {
        "format": "syslog",
        "counts": (66, 2, 50, 14),
        # postscreen reject (19); smtpd milter-reject and three rejects with "123 1.2.3" (40, 42, 43, 44);
        # "NOQUEUE: reject: Unsupported" (45); lmtp records with dsn=1.2.3 (48, 49); smtp records with
        # dsn=1.2.3 (52-56); cleanup milter-reject with "123 1.2.3" (62).
        "unparsed": [19, 40, 42, 43, 44, 45, 48, 49, 52, 53, 54, 55, 56, 62],
        "events": {
            28: [("postfix", "rejected", None, None, "123.45.67.89")],
            65: [("postfix", "expired", "4.4.7", None, None)],
        },
    },
}
