#!/usr/bin/env python3
"""tests/e2e/evil-registry.py: a small registry on loopback that misbehaves on purpose, for what
a real registry won't do.  It serves the image of one OCI layout (built by mkoci.py) under
/v2/MODE/img/..., and MODE (the first path component of the repository) picks the misbehaviour:

  ok              a well-behaved registry (plain http, no auth)
  mismatch        blobs with one byte flipped (digest mismatch)
  long            blobs with extra bytes (more than the declared size)
  short           blobs missing their last bytes
  bigmanifest     a 5 MiB manifest (over the 4 MiB cap)
  dupkeys         a manifest with a duplicate JSON key
  baddigest       a tag manifest whose Docker-Content-Digest header lies
  redirect-other  blob GETs redirect to http://127.0.0.2:PORT/... (another host, plain http)
  redirect-https  blob GETs redirect to https://127.0.0.2:TLSPORT/... (needs --cert/--key)
  redirect-same   blob GETs redirect to a relative path on the same origin
  redirect-loop   blob GETs redirect to themselves
  auth            needs a bearer token from http://127.0.0.1:PORT/token (basic user:pass checked)
  auth-redirect   auth, and blob GETs redirect to https://127.0.0.2:TLSPORT (Authorization must
                  not follow)
  badrealm        the token realm is http://127.0.0.2:PORT/token (another host over http)
  ftprealm        the token realm is ftp://127.0.0.1/token
  ratelimit       the first 2 manifest GETs get 429 (Retry-After: 1), blobs one 503 each
  cut             a blob GET without Range sends half the blob and closes; Range gets 206
  norange         like cut, but Range requests are ignored (200, whole blob)
  slow            blob GETs without Range trickle (64 KiB every 50 ms); Range requests are fast
  bigheaders      every response carries 100 KiB of headers

  evil-registry.py --layout DIR --port-file FILE --log FILE [--cert C --key K] [--tag TAG]

Listens on 127.0.0.1 and 127.0.0.2 (the same port), plus TLS on both when --cert is given.
Writes "PORT TLSPORT" to --port-file once listening, and one JSON line per request to --log:
{"server": "127.0.0.2:PORT", "method", "path", "auth": true|false, "range": "..."}.
"""
import argparse
import base64
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MT_INDEX = "application/vnd.oci.image.index.v1+json"
USER, PASS, TOKEN = "devbox", "secret", "good-token"


class State:
    lock = threading.Lock()
    counts = {}

    @classmethod
    def bump(cls, key):
        with cls.lock:
            cls.counts[key] = cls.counts.get(key, 0) + 1
            return cls.counts[key]


def load_layout(d, tag):
    with open(os.path.join(d, "index.json")) as f:
        idx = json.load(f)
    top = idx["manifests"][0]
    for m in idx["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            top = m
    with open(os.path.join(d, "blobs", "sha256", top["digest"].split(":")[1])) as f:
        doc = json.load(f)
    top = dict(top, config_digest=doc.get("config", {}).get("digest"))
    return top


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        host, port = self.server.server_address[:2]
        line = {"server": f"{host}:{port}", "method": self.command, "path": self.path,
                "auth": "Authorization" in self.headers,
                "range": self.headers.get("Range", "")}
        with State.lock, open(self.server.opts.log, "a") as f:
            f.write(json.dumps(line) + "\n")

    def send(self, code, body=b"", headers=(), ctype="application/json", length=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if self.path.startswith("/v2/bigheaders/"):
            for i in range(100):
                self.send_header(f"X-Pad-{i}", "x" * 1000)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def blob(self, digest):
        p = os.path.join(self.server.opts.layout, "blobs", "sha256", digest.split(":", 1)[1])
        if ":" not in digest or "/" in digest or not os.path.isfile(p):
            return None
        with open(p, "rb") as f:
            return f.read()

    def authorized(self, mode):
        if not mode.startswith("auth"):
            return True
        if self.headers.get("Authorization") == "Bearer " + TOKEN:
            return True
        port = self.server.opts.port
        self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                  [("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",'
                                        f'service="evil",scope="repository:{mode}/img:pull"')])
        return False

    def token(self):
        want = "Basic " + base64.b64encode(f"{USER}:{PASS}".encode()).decode()
        if self.headers.get("Authorization") != want:
            return self.send(401, b'{"errors":[{"code":"DENIED"}]}')
        self.send(200, json.dumps({"token": TOKEN}).encode())

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.record()
        path = self.path.split("?", 1)[0]
        if path == "/token":
            return self.token()
        if path == "/v2/":
            return self.send(200, b"{}")
        parts = path.split("/")
        # /v2/MODE/img/{manifests,blobs}/REF
        if len(parts) != 6 or parts[1] != "v2" or parts[3] != "img":
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        mode, kind, ref = parts[2], parts[4], parts[5]
        if mode in ("badrealm", "ftprealm"):
            realm = (f"http://127.0.0.2:{self.server.opts.port}/token" if mode == "badrealm"
                     else "ftp://127.0.0.1/token")
            return self.send(401, b"{}", [("WWW-Authenticate", f'Bearer realm="{realm}",service="x"')])
        if not self.authorized(mode):
            return
        if kind == "manifests":
            return self.manifest(mode, ref)
        if kind == "blobs":
            return self.blob_get(mode, ref)
        self.send(404)

    def manifest(self, mode, ref):
        top = self.server.top
        digest = top["digest"] if ref == self.server.opts.tag else ref
        data = self.blob(digest)
        if data is None:
            return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        mt = json.loads(data).get("mediaType", top["mediaType"])
        hdr_digest = digest
        if mode == "ratelimit" and State.bump(("m", mode)) <= 2:
            return self.send(429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}', [("Retry-After", "1")])
        if mode == "bigmanifest":
            doc = json.loads(data)
            doc["annotations"] = {"pad": "x" * (5 << 20)}
            data = json.dumps(doc).encode()
        elif mode == "dupkeys":
            data = b'{"schemaVersion": 2, "schemaVersion": 2, ' + data.lstrip()[1:]
        elif mode == "baddigest":
            hdr_digest = "sha256:" + "0" * 64
        hdrs = [] if mode in ("bigmanifest", "dupkeys") else [("Docker-Content-Digest", hdr_digest)]
        self.send(200, data, hdrs, ctype=mt)

    def redirect(self, url):
        self.send(307, b"", [("Location", url)])

    def blob_get(self, mode, digest):
        data = self.blob(digest)
        if data is None:
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        opts = self.server.opts
        here = self.server.server_address[0]
        if digest == self.server.config_digest:
            mode = "ok"  # misbehave on layers only: they take the streaming path
        clean = f"/v2/ok/img/blobs/{digest}"
        if mode == "redirect-other":
            return self.redirect(f"http://127.0.0.2:{opts.port}{clean}")
        if mode in ("redirect-https", "auth-redirect") and here == "127.0.0.1":
            return self.redirect(f"https://127.0.0.2:{opts.tls_port}{clean}")
        if mode == "redirect-same":
            return self.redirect(clean)
        if mode == "redirect-loop":
            return self.redirect(self.path)
        if mode == "ratelimit" and State.bump(("b", digest)) == 1:
            return self.send(503, b'{"errors":[{"code":"UNAVAILABLE"}]}')
        if mode == "mismatch":
            data = bytes([data[0] ^ 1]) + data[1:]
        elif mode == "long":
            data = data + b"0123456789"
        elif mode == "short":
            data = data[:-1]
        rng = self.headers.get("Range", "")
        octet = "application/octet-stream"
        if rng.startswith("bytes=") and mode != "norange":
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                return self.send(416, b"")
            return self.send(206, data[start:], [("Content-Range", f"bytes {start}-{len(data)-1}/{len(data)}")],
                             ctype=octet)
        if mode in ("cut", "norange") and State.bump(("cut", digest)) == 1 and len(data) > 1:
            self.send(200, data[:len(data) // 2], ctype=octet, length=len(data))
            self.close_connection = True
            return
        if mode == "slow":
            self.send(200, b"", ctype=octet, length=len(data))
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i:i + 65536])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.send(200, data, ctype=octet)


def serve(addr, port, opts, top, ctx=None):
    srv = ThreadingHTTPServer((addr, port), Handler)
    srv.daemon_threads = True
    srv.opts, srv.top = opts, top
    srv.config_digest = top.get("config_digest")
    if ctx:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layout", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--max-seconds", type=int, default=600)
    opts = ap.parse_args()
    top = load_layout(opts.layout, opts.tag)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    opts.port = s.getsockname()[1]
    s.close()
    servers = [serve("127.0.0.1", opts.port, opts, top), serve("127.0.0.2", opts.port, opts, top)]
    opts.tls_port = 0
    if opts.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.cert, opts.key)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        opts.tls_port = s.getsockname()[1]
        s.close()
        servers += [serve("127.0.0.1", opts.tls_port, opts, top, ctx),
                    serve("127.0.0.2", opts.tls_port, opts, top, ctx)]
    with open(opts.port_file + ".tmp", "w") as f:
        f.write(f"{opts.port} {opts.tls_port}\n")
    os.rename(opts.port_file + ".tmp", opts.port_file)
    time.sleep(opts.max_seconds)  # bounded: the server stops by itself


if __name__ == "__main__":
    sys.exit(main())
