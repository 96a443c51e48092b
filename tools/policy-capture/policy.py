"""Send Postfix policy-delegation requests (one per connection) and print the answers."""
import socket, sys
port = int(sys.argv[1])
def ask(client, client_name, sender, recipient, state="RCPT"):
    req = {"request": "smtpd_access_policy", "protocol_state": state, "protocol_name": "ESMTP",
           "client_address": client, "client_name": client_name, "reverse_client_name": client_name,
           "helo_name": client_name, "sender": sender, "recipient": recipient, "queue_id": "",
           "instance": "1a2b.5f3c8d9e.0", "size": "0"}
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall("".join(f"{k}={v}\n" for k, v in req.items()).encode() + b"\n")
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    s.close()
    print(recipient, "->", data.decode().strip())
for args in [a.split(",") for a in sys.argv[2:]]:
    ask(*args)
