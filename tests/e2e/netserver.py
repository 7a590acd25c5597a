#!/usr/bin/env python3
"""tests/e2e/netserver.py: test servers on loopback for the network e2e tests.

netserver.py DIR PORTFILE [--tls CERT KEY] [--bind ADDR] [--port N] [--record FILE]: serve DIR
over HTTP/1.1 (threaded, keep-alive) on ADDR (default 127.0.0.1) at a free port, TLS when --tls is
given; writes the port to PORTFILE once listening.  --record appends every request's line and
headers to FILE (never echoed back: the secrets test looks there for the values the proxy put
in).  GET /echo-host answers with the Host header it received; GET /bytes/N sends N
zero bytes (for throughput); everything else is a static file (so a `git update-server-info`'d
bare repository can be cloned over the dumb http protocol).
"""
import http.server
import os
import socketserver
import ssl
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        if RECORD:
            with open(RECORD, "a") as f:
                f.write("%s\n%s\n" % (self.requestline, str(self.headers).rstrip("\n")))
        if self.path == "/echo-host":
            body = (self.headers.get("Host", "") + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/bytes/"):
            n = int(self.path[7:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"\0" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        super().do_GET()


RECORD = None


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global RECORD
    args = sys.argv[1:]
    root, portfile = args[0], args[1]
    tls = None
    bind = "127.0.0.1"
    port = 0
    i = 2
    while i < len(args):
        if args[i] == "--tls":
            tls = (args[i + 1], args[i + 2])
            i += 3
        elif args[i] == "--bind":
            bind = args[i + 1]
            i += 2
        elif args[i] == "--record":
            RECORD = os.path.abspath(args[i + 1])
            i += 2
        elif args[i] == "--port":
            port = int(args[i + 1])
            i += 2
        else:
            sys.exit("netserver.py: unknown argument " + args[i])
    os.chdir(root)
    srv = Server((bind, port), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
