#!/usr/bin/env python3
# A stand-in for kurad's admin socket, for tests of whom kuractl talks to and of what it prints:
# answers GET /v1/status like kurad (echoing --state-dir), GET /v1/whois with the JSON in
# --whois FILE, and every POST with a success, and appends every byte it receives to --log.
# With --listen-as UID it binds as the caller, then drops to UID before listen(), so the
# socket's credentials (SO_PEERCRED) are UID's while its file is the caller's.
import argparse
import json
import os
import socket
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--socket", required=True)
ap.add_argument("--state-dir", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--ready", required=True)
ap.add_argument("--whois")
ap.add_argument("--listen-as", type=int)
a = ap.parse_args()

whois = open(a.whois, "rb").read() if a.whois else b'{"error":"not_found","message":"none"}'
log = open(a.log, "ab", buffering=0)
try:
    os.unlink(a.socket)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(a.socket)
os.chmod(a.socket, 0o666)
ready = open(a.ready, "w")  # before dropping: the test waits for it to be non-empty
if a.listen_as is not None:
    os.setgroups([])
    os.setresgid(a.listen_as, a.listen_as, a.listen_as)
    os.setresuid(a.listen_as, a.listen_as, a.listen_as)
srv.listen(16)
ready.write("listening\n")
ready.close()


def reply(conn, status, body):
    conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n" % (status, len(body)) + body)


while True:
    conn, _ = srv.accept()
    conn.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
            data += chunk
        log.write(data)
        path = head.split(b" ")[1] if b" " in head else b""
        if path.startswith(b"/v1/status"):
            reply(conn, 200, json.dumps({"state_dir": a.state_dir, "version": "0.1.0"}).encode())
        elif path.startswith(b"/v1/whois"):
            reply(conn, 200, whois)
        elif path.startswith(b"/v1/op/config"):
            # kuractl reads a reply strictly by the operation's fields: kurad's own forms.
            reply(conn, 200, b'{"max_value_size":1048576}')
        elif head.startswith(b"POST"):
            reply(conn, 200, b'{"version":1}')
        else:
            reply(conn, 404, b'{"error":"no_endpoint","message":"no such endpoint"}')
    except (OSError, ValueError) as e:
        print("fake-kurad:", e, file=sys.stderr)
    finally:
        conn.close()
