"""One HTTP/1.1 GET over a Unix socket, the connection closed after it: for tests that must
make their requests from one process (curl's start-up is too slow, or the process itself is
what is tested)."""
import socket


def get(sock_path, path, host=b"kura"):
    """Return (status, headers and body as bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + host +
                  b"\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    finally:
        s.close()
    return out[9:12].decode(), out
