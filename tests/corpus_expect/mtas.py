"""Expected events of the Exim, sendmail, qmail, OpenSMTPD, Dovecot and Courier logs in the public corpus (owner: Exim, sendmail, qmail,
OpenSMTPD, Dovecot and Courier parsers).

Read line by line with the rules in docs/formats-mtas.md:

exim/0536, exim/0622 (Exim's test suite, mainlog format): every `rejected RCPT` / `rejected by
non-SMTP ACL` line is rejected, with the reply and code only when the logged text starts with
them (`599 5.12.3` is a valid code, `499 4.1234.343` is not, so that line has a reply and no
code; a `temporarily rejected` line without a logged reply gets 451, the reply Exim
sends then); `**` is bounced, `==` deferred, `=>` and `->` delivered (reply from `C="250 ..."`,
no enhanced code in "250 OK id=..."). `<=`, `Completed`, daemon and connection notes: nothing.

fail2ban/exim, fail2ban/exim-spam (mainlog format): only the `rejected RCPT`, `rejected
after DATA` and `rejected by local_scan()` lines are status lines; none logs a reply. The
authenticator failures (535), protocol errors, `SA: Action` notes, `sender verify fail`
notes and the fail2ban comments are not. The journald line without an Exim date at the
start is not a mainlog line.

fail2ban/sendmail-reject: every `reject=` field is one rejected event with the reply and
code it quotes; the remote is the relay= name, or its IP when sendmail marks the name
"(may be forged)" or logged none. `<addr>... User unknown`, `did not issue MAIL`, EXPN/VRFY
refusals, pre-greeting and AUTH lines: nothing. fail2ban/sendmail-auth: AUTH failures only.

fail2ban/qmail: rblsmtpd refusals (with their 451 reply when logged) and a patched
qmail-smtpd's `421 badiprbl` are rejected; no enhanced code anywhere.

fail2ban/courier-smtp: the five `error,relay=...,to=<...>: 550 ...` lines are rejected (reply
550, no enhanced code); the three `msg="535 Authentication failed."` lines are AUTH, not counted.

fail2ban/dovecot: logins and authentication only: no status line at all.
"""

FILES = {
    "exim/0536": {
        "format": "exim",
        "counts": (41, 28, 13, 0),
        "unparsed": [],
        "events": {
            1: [('exim', 'rejected', None, None, None)],
            2: [('exim', 'rejected', None, '599', None)],
            3: [('exim', 'rejected', None, '599', None)],
            4: [('exim', 'rejected', '5.2.3', '599', None)],
            5: [('exim', 'rejected', '5.12.3', '599', None)],
            7: [('exim', 'rejected', None, '550', None)],
            9: [('exim', 'rejected', None, None, None)],
            10: [('exim', 'rejected', '4.12.343', '499', None)],
            11: [('exim', 'rejected', None, '499', None)],
            13: [('exim', 'rejected', None, '451', None)],
            14: [('exim', 'rejected', None, None, None)],
            15: [('exim', 'rejected', None, '590', None)],
            16: [('exim', 'rejected', '5.4.3', '590', None)],
            18: [('exim', 'rejected', None, '550', None)],
            19: [('exim', 'rejected', None, '451', None)],  # temporarily rejected, no code logged: Exim sent 451
            20: [('exim', 'rejected', None, '490', None)],
            21: [('exim', 'rejected', '4.4.3', '490', None)],
            23: [('exim', 'rejected', None, '451', None)],
            24: [('exim', 'rejected', None, None, None)],
            26: [('exim', 'delivered', None, None, None)],
            28: [('exim', 'rejected', None, '599', None)],
            30: [('exim', 'delivered', None, None, None)],
            33: [('exim', 'bounced', '5.4.3', '590', None)],
            35: [('exim', 'delivered', None, None, None)],
            38: [('exim', 'rejected', None, None, None)],
            39: [('exim', 'rejected', None, None, None)],
            40: [('exim', 'rejected', None, None, None)],
            41: [('exim', 'rejected', None, None, None)],
        },
    },
    "exim/0622": {
        "format": "exim",
        "counts": (72, 45, 27, 0),
        "unparsed": [],
        "events": {
            2: [('exim', 'delivered', None, '250', '127.0.0.1')],
            3: [('exim', 'delivered', None, '250', '127.0.0.1')],
            4: [('exim', 'delivered', None, '250', '127.0.0.1')],
            5: [('exim', 'delivered', None, '250', '127.0.0.1')],
            6: [('exim', 'delivered', None, '250', '127.0.0.1')],
            7: [('exim', 'delivered', None, '250', '127.0.0.1')],
            10: [('exim', 'delivered', None, '250', '127.0.0.1')],
            11: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            12: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            13: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            14: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            15: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            16: [('exim', 'delivered', None, '250', '127.0.0.1')],
            17: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            18: [('exim', 'deferred', '4.5.3', '452', '127.0.0.1')],
            19: [('exim', 'delivered', None, '250', '127.0.0.1')],
            20: [('exim', 'delivered', None, '250', '127.0.0.1')],
            21: [('exim', 'delivered', None, '250', '127.0.0.1')],
            22: [('exim', 'delivered', None, '250', '127.0.0.1')],
            28: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            29: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            30: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            31: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            32: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            34: [('exim', 'delivered', None, None, None)],
            36: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            37: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            39: [('exim', 'delivered', None, None, None)],
            40: [('exim', 'delivered', None, None, None)],
            41: [('exim', 'delivered', None, None, None)],
            44: [('exim', 'delivered', None, None, None)],
            45: [('exim', 'delivered', None, None, None)],
            49: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            50: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            51: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            52: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            53: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            55: [('exim', 'delivered', None, None, None)],
            59: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            60: [('exim', 'rejected', '4.5.3', '452', 'localhost')],
            62: [('exim', 'delivered', None, None, None)],
            63: [('exim', 'delivered', None, None, None)],
            64: [('exim', 'delivered', None, None, None)],
            69: [('exim', 'delivered', None, None, None)],
            70: [('exim', 'delivered', None, None, None)],
        },
    },
    "fail2ban/exim": {
        "format": "exim",
        "counts": (128, 5, 123, 0),
        "unparsed": [],
        "events": {
            51: [('exim', 'rejected', None, None, '202.132.70.178')],
            69: [('exim', 'rejected', None, None, 'mx.tillions.com')],
            71: [('exim', 'rejected', None, None, 'altmx.marsukov.com')],
            107: [('exim', 'rejected', None, None, 'some.rev.dns.if.found')],
            117: [('exim', 'rejected', None, None, 'm05.horp.tld')],
        },
    },
    "fail2ban/exim-spam": {
        "format": "exim",
        "counts": (26, 5, 21, 0),
        "unparsed": [],
        "events": {
            7: [('exim', 'rejected', None, None, 'lsanca1-ar3-4-47-028-040.lsanca1.elnk.dsl.genuity.net')],
            10: [('exim', 'rejected', None, None, '2.181.148.95')],
            12: [('exim', 'rejected', None, None, '46.254.240.82')],
            14: [('exim', 'rejected', None, None, 'egeftech.static.otenet.gr')],
            16: [('exim', 'rejected', None, None, 'dbs.marsukov.com')],
        },
    },
    "fail2ban/sendmail-reject": {
        "format": "syslog",
        "counts": (131, 20, 111, 0),
        "unparsed": [],
        "events": {
            4: [('sendmail', 'rejected', '5.7.1', '550', '128-68-136-133.broadband.corbina.ru')],
            7: [('sendmail', 'rejected', '5.7.1', '550', '80.253.155.119')],
            10: [('sendmail', 'rejected', '5.7.1', '550', '118-161-66-57.dynamic.hinet.net')],
            13: [('sendmail', 'rejected', '5.1.8', '553', '2.180.185.27')],
            16: [('sendmail', 'rejected', '5.1.8', '553', '161.pool85-60-238.dynamic.orange.es')],
            19: [('sendmail', 'rejected', '5.1.8', '553', '202.53.73.138')],
            22: [('sendmail', 'rejected', '5.7.1', '550', '151.232.63.226')],
            25: [('sendmail', 'rejected', '5.7.1', '550', '74-137-127-206.dhcp.insightbb.com')],
            28: [('sendmail', 'rejected', '5.7.1', '550', '203.229.186.250')],
            31: [('sendmail', 'rejected', '5.7.1', '550', 'r186-54-117-93.dialup.adsl.anteldata.net.uy')],
            34: [('sendmail', 'rejected', '4.3.2', '421', 'leased-line-54-82.telecom.by')],
            38: [('sendmail', 'rejected', '4.3.2', '421', '189-30-205-74.paebv701.dsl.brasiltelecom.net.br')],
            41: [('sendmail', 'rejected', '4.3.2', '421', '196.213.73.146')],
            44: [('sendmail', 'rejected', '4.3.2', '421', '192.0.2.123')],
            52: [('sendmail', 'rejected', '5.7.1', '550', '41.204.78.137')],
            55: [('sendmail', 'rejected', '5.1.1', '550', '189-30-205-74.paebv701.dsl.brasiltelecom.net.br')],
            58: [('sendmail', 'rejected', '5.1.8', '553', '123.69.106.50')],
            61: [('sendmail', 'rejected', '4.1.8', '451', '192.0.2.100')],
            79: [('sendmail', 'rejected', '5.7.1', '550', '192.0.2.5')],
            130: [('sendmail', 'rejected', '4.4.0', '450', '45.125.66.67')],
        },
    },
    "fail2ban/sendmail-auth": {
        "format": "syslog",
        "counts": (36, 0, 36, 0),
        "unparsed": [],
        "events": {
        },
    },
    "fail2ban/qmail": {
        "format": "syslog",
        "counts": (10, 4, 6, 0),
        "unparsed": [],
        "events": {
            2: [('qmail', 'rejected', None, '451', '198.51.100.77')],
            4: [('qmail', 'rejected', None, '421', None)],
            8: [('qmail', 'rejected', None, None, '193.111.120.47')],
            10: [('qmail', 'rejected', None, None, '192.203.178.107')],
        },
    },
    "fail2ban/courier-smtp": {
        "format": "syslog",
        "counts": (16, 5, 11, 0),
        "unparsed": [],
        "events": {
            2: [('courier', 'rejected', None, '550', '1.2.3.4')],
            6: [('courier', 'rejected', None, '550', '1.2.3.4')],
            8: [('courier', 'rejected', None, '550', '1.2.3.4')],
            10: [('courier', 'rejected', None, '550', '1.2.3.4')],
            12: [('courier', 'rejected', None, '550', '1.2.3.4')],
        },
    },
    "fail2ban/dovecot": {
        "format": "syslog",
        "counts": (182, 0, 182, 0),
        "unparsed": [],
        "events": {
        },
    },
}
