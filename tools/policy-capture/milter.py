"""A minimal milter client (protocol version 6): offers one message to a milter, prints its replies."""
import socket, struct, sys

def packet(cmd, data=b""):
    return struct.pack("!I", len(data) + 1) + cmd + data

def read(s):
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    n = struct.unpack("!I", head)[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return body[:1], body[1:]

def z(*parts):
    return b"".join(p.encode() + b"\0" for p in parts)

def offer(port, qid, client, sender, rcpt, headers, body):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.sendall(packet(b"O", struct.pack("!III", 6, 0x1FF, 0)))
    print("optneg", read(s)[0])
    def step(cmd, data, macros=None):
        if macros:
            s.sendall(packet(b"D", cmd + z(*macros)))
        s.sendall(packet(cmd, data))
        while True:
            code, rest = read(s)
            print(cmd.decode(), "->", code.decode(), rest[:120])
            if code not in (b"h", b"i", b"m", b"+", b"-", b"p"):  # modifications precede the final reply
                return code
    ip = client
    if step(b"C", z("mail.example.net") + b"4" + struct.pack("!H", 25) + z(ip),
            ["j", "mx.example.org", "{daemon_name}", "MTA"]) != b"c": return
    step(b"H", z("mail.example.net"))
    step(b"M", z(f"<{sender}>"), ["i", qid])
    step(b"R", z(f"<{rcpt}>"))
    for name, value in headers:
        step(b"L", z(name, value))
    step(b"N", b"")
    step(b"B", body.encode())
    step(b"E", b"")
    s.sendall(packet(b"Q"))
    s.close()

if __name__ == "__main__":
    port = int(sys.argv[1])
    body = "Hello.\r\nThis is a test, nothing more; 550 5.1.1 is only text.\r\n"
    base = [("Date", "Mon, 07 Dec 2026 22:20:00 +0000"), ("Subject", "milter test 550 5.7.1"),
            ("Message-ID", "<t1.550-5.7.1@example.org>")]
    # 1: from an internal host: signed
    offer(port, "4F1A2B3C4D", "127.0.0.1", "alice@example.org", "bob@example.net",
          [("From", "Alice <alice@example.org>"), ("To", "bob@example.net")] + base, body)
    # 2: from outside, no signature
    offer(port, "4F1A2B3C4E", "192.0.2.10", "carol@example.net", "alice@example.org",
          [("From", "Carol <carol@example.net>"), ("To", "alice@example.org")] + base, body)
    # 3: from outside, a signature whose key cannot be fetched (no DNS here)
    sig = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=remote.example; s=sel1; t=1796680800; "
           "h=from:to:subject:date; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; "
           "b=dGVzdHNpZ25hdHVyZXRlc3RzaWduYXR1cmV0ZXN0c2lnbmF0dXJl")
    offer(port, "4F1A2B3C4F", "192.0.2.11", "dave@remote.example", "alice@example.org",
          [("DKIM-Signature", sig), ("From", "Dave <dave@remote.example>"), ("To", "alice@example.org")] + base, body)
