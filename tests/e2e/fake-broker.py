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
import base64
import hashlib
import json
import os
import socketserver
import sys
import threading

SOCK, LOG, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
lock = threading.Lock()

HOSTILE = "a\u009b31mred\u0085b\u202eevil\u2066x\u007fy\u001b[2J\u200ez\u2028w"

if MODE == "big":
    N, SIZE = int(ARGS[0]), int(ARGS[1])
    VALUE = os.urandom(SIZE)
    B64 = base64.b64encode(VALUE)
    # The test checks a written file against this.
    with open(LOG + ".sha256", "w") as f:
        f.write(hashlib.sha256(VALUE).hexdigest() + "\n")
    NAMES = ["big/%03d" % i for i in range(N)]
elif MODE == "names":
    NAMES = ["n/%05d" % i for i in range(int(ARGS[0]))]
    B64 = base64.b64encode(b"x")
elif MODE == "bigpad":
    NAMES = ["p"]
    B64 = base64.b64encode(b"v")
elif MODE in ("text", "deny", "ctlname"):
    NAMES = ["tok"]
    B64 = base64.b64encode(b"v")
else:
    NAMES = []
    B64 = b""


def body_for(path):
    """(status, [bytes...]) for a request path: a value of megabytes is sent as it is, uncopied."""
    if path == "/v1/whoami":
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
        if name in NAMES:
            return 200, [('{"name":"%s","version":1,"created":"2026-01-01T00:00:00Z",'
                          '"size":0,"value":"' % name).encode(), B64, b'"}']
        return 403, json.dumps({"error": "denied", "message": "no grant " + HOSTILE}).encode()
    return 404, b'{"error":"not_found","message":"no such endpoint"}'


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(65536).decode("latin-1")
        while True:  # the rest of the head
            h = self.rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
        parts = line.split()
        path = parts[1] if len(parts) > 1 else ""
        with lock, open(LOG, "a") as f:
            f.write(path + "\n")
        status, body = body_for(path)
        if isinstance(body, bytes):
            body = [body]
        head = ("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (status, sum(map(len, body)))).encode()
        try:
            self.request.sendall(head + body[0])
            for part in body[1:]:
                self.request.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCK):
    os.unlink(SOCK)
srv = Server(SOCK, Handler)
os.chmod(SOCK, 0o666)
srv.serve_forever()
