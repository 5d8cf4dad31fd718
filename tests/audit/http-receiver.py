#!/usr/bin/python3
# An HTTP audit collector for tests/test-audit-sink.c: accepts POSTs of NDJSON on 127.0.0.1 and
# appends each body to DIR/received, one line per request to DIR/requests ("STATUS BYTES").
# DIR/mode, read on every request, says how to answer: "ok" (or no file), "500", or "hang S"
# (sleep S seconds, then close without an answer and without keeping the body).
# Usage: http-receiver.py DIR [PORT]; the port it listens on is written to DIR/port.
import http.server
import os
import sys
import threading
import time

DIR = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
lock = threading.Lock()


def mode():
    try:
        with open(os.path.join(DIR, "mode")) as f:
            return f.read().split()
    except FileNotFoundError:
        return ["ok"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status, n):
        with lock, open(os.path.join(DIR, "requests"), "a") as f:
            f.write("%d %d\n" % (status, n))

    def answer(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        m = mode()
        if m[0] == "hang":
            self.note(0, n)
            time.sleep(float(m[1]))
            self.close_connection = True
            return
        if m[0] == "500":
            self.note(500, n)
            self.answer(500)
            return
        if self.headers.get("Content-Type") != "application/x-ndjson" or self.path != "/ingest":
            self.note(415, n)
            self.answer(415)
            return
        with lock, open(os.path.join(DIR, "received"), "ab") as f:
            f.write(body)
        self.note(200, n)
        self.answer(200)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", PORT), Handler)
tmp = os.path.join(DIR, "port.tmp")
with open(tmp, "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(tmp, os.path.join(DIR, "port"))
srv.serve_forever()
