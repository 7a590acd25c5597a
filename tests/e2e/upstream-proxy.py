#!/usr/bin/env python3
"""tests/e2e/upstream-proxy.py: a company's HTTP proxy, on loopback, for t-net-upstream.

upstream-proxy.py PORTFILE LOGFILE [--auth USER:PASSWORD] [--block NAME]...: listen on
127.0.0.1 at a free port (written to PORTFILE once listening) and serve CONNECT host:port
(a tunnel) and absolute-form requests (http://host:port/path, forwarded in origin form on a
connection of its own).  It stands for a proxy on a network whose names the host cannot
resolve: every host name is taken to mean 127.0.0.1 (the port is kept), so the test's
servers on loopback stand for the outside.  With --auth a request without that
Proxy-Authorization (Basic) is answered 407; a --block NAME is answered 403.  Every request
appends one line to LOGFILE: "METHOD TARGET auth=USER:PASSWORD|-" (the credentials it
received, decoded, so the test can see who sent what).
"""
import base64
import os
import socket
import socketserver
import sys
import threading

LOG = None
AUTH = None
BLOCK = set()
LOCK = threading.Lock()


def log(line):
    with LOCK, open(LOG, "a") as f:
        f.write(line + "\n")


def read_head(rfile):
    lines = []
    while True:
        line = rfile.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.decode("latin-1").rstrip("\r\n"))


def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def split_hostport(hp, default):
    host, _, port = hp.rpartition(":")
    if not host or not port.isdigit():
        return hp, default
    return host, int(port)


class Handler(socketserver.StreamRequestHandler):
    rbufsize = 0  # unbuffered: nothing past the head is read into a buffer the pumps miss
    def reply(self, status, text):
        body = (text + "\n").encode()
        self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (status, text.encode(), len(body), body))

    def handle(self):
        head = read_head(self.rfile)
        if not head:
            return
        method, target, _ = (head[0].split(" ") + ["", ""])[:3]
        auth = "-"
        rest = []
        for h in head[1:]:
            name, _, value = h.partition(":")
            if name.strip().lower() == "proxy-authorization":
                kind, _, cred = value.strip().partition(" ")
                try:
                    auth = base64.b64decode(cred).decode() if kind == "Basic" else "?"
                except Exception:
                    auth = "?"
            else:
                rest.append(h)
        log("%s %s auth=%s" % (method, target, auth))
        if AUTH is not None and auth != AUTH:
            self.reply(407, "Proxy Authentication Required")
            return
        if method == "CONNECT":
            host, port = split_hostport(target, 443)
        elif target.startswith("http://"):
            hp, _, path = target[7:].partition("/")
            host, port = split_hostport(hp, 80)
        else:
            self.reply(400, "Bad Request")
            return
        if host in BLOCK:
            self.reply(403, "Forbidden by the company proxy")
            return
        try:
            up = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            self.reply(502, "Bad Gateway")
            return
        up.settimeout(None)
        if method == "CONNECT":
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
        else:
            out = "%s /%s HTTP/1.1\r\n" % (method, path) + "".join(h + "\r\n" for h in rest)
            up.sendall(out.encode("latin-1") + b"\r\n")
        t = threading.Thread(target=pump, args=(up, self.connection), daemon=True)
        t.start()
        pump(self.connection, up)
        t.join(60)
        up.close()


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global LOG, AUTH
    args = sys.argv[1:]
    portfile, LOG = args[0], args[1]
    i = 2
    while i < len(args):
        if args[i] == "--auth":
            AUTH = args[i + 1]
        elif args[i] == "--block":
            BLOCK.add(args[i + 1])
        i += 2
    srv = Server(("127.0.0.1", 0), Handler)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
