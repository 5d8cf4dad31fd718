#!/usr/bin/python3
# A hostile stand-in for kurad's workload socket, for tests/e2e/test-kura-hostile.sh: whatever
# answers on the socket a container mounts can say anything, and kura must stay safe.
# Usage: fake-broker.py SOCKET LOG MODE [ARG...]; each request's path is appended to LOG.
#   big N SIZE   /v1/secrets lists big/000..N-1; each value is SIZE random bytes (the same for all)
#   names N      /v1/secrets lists n/00000..N-1 with one-byte values
#   biglist MIB  /v1/secrets answers MIB MiB (a fraction is fine) of well-formed JSON, small
#                entries repeated
#   text         whoami carries labels full of C0, DEL, C1 and bidi controls; /v1/secrets lists
#                "tok" (value "v"); any other secret gets 403 with a message holding the same
#   deny         /v1/secrets answers 403 with that message
#   bigdeny MIB  any secret gets a 403 of MIB MiB: a message and an array of zeros
#   bigpad MIB   /v1/secrets lists "p", whose answer carries such an array beside its value
#   ctlname      /v1/secrets lists a name holding a CSI
#   slow DELAY   /v1/secrets lists "tok" (value "v"); whoami answers after DELAY seconds (to
#                look at kura while it waits); /v1/watch?since=1 says "tok" changed (revision
#                2) after 0.3 s, a poll from a later revision holds for 30 s
#   raw VARIANT  /v1/secrets lists "tok" (value "v\0\xff"), answered in the raw form, hostile by
#                VARIANT: ok, empty (a value of 0 bytes), ctype (text/plain), noctype,
#                noversion, badversion TEXT, dupversion, nofingerprint, badcreated, short (the
#                body short of its Content-Length), long (past it, in the same write), late
#                (one byte past it, 200 ms after the body), oversized (a Content-Length of
#                4 MiB + 1)
# Secrets' values are answered in the raw form (application/octet-stream with Kura-Version,
# Kura-Fingerprint and Kura-Created) when the request asks for it with its Accept header, as
# kurad does, else in today's JSON form; MODE "json:M" is mode M from a kurad that knows only
# JSON (it ignores Accept). bigpad is about the JSON form and always answers it. Each secret
# request's Accept header is appended to LOG.accept.
import base64
import hashlib
import json
import os
import socketserver
import sys
import threading
import time

SOCK, LOG, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
JSON_ONLY = MODE.startswith("json:")
MODE = MODE[len("json:"):] if JSON_ONLY else MODE
lock = threading.Lock()
FP = "b2:" + "0123456789abcdef" * 2

HOSTILE = "a\u009b31mred\u0085b\u202eevil\u2066x\u007fy\u001b[2J\u200ez\u2028w"

if MODE == "big":
    N, SIZE = int(ARGS[0]), int(ARGS[1])
    VALUE = os.urandom(SIZE)
    # The test checks a written file against this.
    with open(LOG + ".sha256", "w") as f:
        f.write(hashlib.sha256(VALUE).hexdigest() + "\n")
    NAMES = ["big/%03d" % i for i in range(N)]
elif MODE == "names":
    NAMES = ["n/%05d" % i for i in range(int(ARGS[0]))]
    VALUE = b"x"
elif MODE == "bigpad":
    NAMES = ["p"]
    VALUE = b"v"
elif MODE in ("text", "deny", "ctlname", "slow"):
    NAMES = ["tok"]
    VALUE = b"v"
elif MODE == "raw":
    NAMES = ["tok"]
    VALUE = b"" if ARGS[0] == "empty" else b"v\0\xff"
else:
    NAMES = []
    VALUE = b""
B64 = base64.b64encode(VALUE)
CREATED = "2026-01-01T00:00:00Z"


def raw_answer():
    """(headers, [bytes...], Content-Length, bytes sent late) of a value in the raw form, made
    hostile as the raw mode's variant says."""
    variant = ARGS[0] if MODE == "raw" else "ok"
    heads = [("Content-Type", "application/octet-stream"), ("Kura-Version", "1"),
             ("Kura-Fingerprint", FP), ("Kura-Created", CREATED)]
    drop = {"noctype": "Content-Type", "noversion": "Kura-Version",
            "nofingerprint": "Kura-Fingerprint"}.get(variant)
    heads = [h for h in heads if h[0] != drop]
    if variant == "ctype":
        heads[0] = ("Content-Type", "text/plain")
    elif variant == "badversion":
        heads[1] = ("Kura-Version", ARGS[1])
    elif variant == "dupversion":
        heads.insert(2, ("Kura-Version", "1"))
    elif variant == "badcreated":
        heads[3] = ("Kura-Created", "yesterday")
    body, clen, late = VALUE, len(VALUE), b""
    if variant == "short":
        clen += 5
    elif variant == "long":
        body += b"extra"
    elif variant == "late":
        late = b"x"
    elif variant == "oversized":
        clen = 4 * 1024 * 1024 + 1
        body = b"\0" * 65536
    return heads, [body], clen, late


def body_for(path, raw):
    """(status, [bytes...]) for a request path, or with raw a whole raw_answer(): a value of
    megabytes is sent as it is, uncopied."""
    if path.startswith("/v1/watch") and MODE == "slow":
        time.sleep(0.3 if "since=1&" in path else 30)
        return 200, json.dumps({"revision": 2, "changed": ["tok"]}).encode()
    if path == "/v1/whoami":
        if MODE == "slow":
            time.sleep(float(ARGS[0]))
        return 200, json.dumps({"host": False, "runtime": "docker", "pid": 1, "uid": 0,
                                "container_id": "c" * 64, "name": HOSTILE,
                                "labels": {"evil": HOSTILE, "k\u009b": "v"}}).encode()
    if path == "/v1/secrets":
        if MODE == "biglist":
            entry = b'{"name":"x","version":1},'
            n = int(float(ARGS[0]) * 1024 * 1024) // len(entry)
            return 200, b'{"revision":1,"secrets":[' + entry * n + b'{"name":"y","version":1}]}'
        if MODE == "ctlname":
            return 200, json.dumps({"revision": 1, "secrets": [
                {"name": "bad\u009b31m", "version": 1}]}).encode()
        if MODE == "deny":
            return 403, json.dumps({"error": "denied", "message": "no grant " + HOSTILE}).encode()
        return 200, json.dumps({"revision": 1, "secrets": [
            {"name": n, "version": 1} for n in NAMES]}).encode()
    if path.startswith("/v1/secrets/"):
        name = path[len("/v1/secrets/"):]
        if MODE == "bigdeny":
            n = int(float(ARGS[0]) * 1024 * 1024) // 2
            return 403, [b'{"error":"denied","message":"no","pad":[', b"0," * n, b'0]}']
        if MODE == "bigpad" and name in NAMES:
            n = int(float(ARGS[0]) * 1024 * 1024) // 2
            return 200, [b'{"name":"p","version":1,"value":"' + B64 + b'","pad":[', b"0," * n,
                         b'0]}']
        if name in NAMES and raw:
            return 200, raw_answer()
        if name in NAMES:
            return 200, [('{"name":"%s","version":1,"created":"2026-01-01T00:00:00Z",'
                          '"size":0,"value":"' % name).encode(), B64, b'"}']
        return 403, json.dumps({"error": "denied", "message": "no grant " + HOSTILE}).encode()
    return 404, b'{"error":"not_found","message":"no such endpoint"}'


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(65536).decode("latin-1")
        accept = ""
        while True:  # the rest of the head
            h = self.rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        parts = line.split()
        path = parts[1] if len(parts) > 1 else ""
        with lock, open(LOG, "a") as f:
            f.write(path + "\n")
        if path.startswith("/v1/secrets/"):
            with lock, open(LOG + ".accept", "a") as f:
                f.write(accept + "\n")
        raw = accept == "application/octet-stream" and not JSON_ONLY
        status, body = body_for(path, raw)
        heads, clen, late = [("Content-Type", "application/json")], None, b""
        if isinstance(body, tuple):
            heads, body, clen, late = body
        if isinstance(body, bytes):
            body = [body]
        if clen is None:
            clen = sum(map(len, body))
        head = "HTTP/1.1 %d X\r\n" % status
        for k, v in heads:
            head += "%s: %s\r\n" % (k, v)
        head = (head + "Content-Length: %d\r\nConnection: close\r\n\r\n" % clen).encode()
        try:
            self.request.sendall(head + body[0])
            for part in body[1:]:
                self.request.sendall(part)
            if late:
                time.sleep(0.2)
                self.request.sendall(late)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCK):
    os.unlink(SOCK)
srv = Server(SOCK, Handler)
os.chmod(SOCK, 0o666)
srv.serve_forever()
