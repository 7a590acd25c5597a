#!/usr/bin/env python3
"""Generate the seed corpora for tests/fuzz/fuzz-proxy-http.c, fuzz-proxy-tls.c and
fuzz-proxy-secret.c.

proxy-http: one byte of chunk-size seed, then what a client sends to the proxy (heads and
bodies, several requests on one connection).  proxy-secret: one byte picking the intercepted
host, then requests inside an intercepted TLS connection.  proxy-tls: what a client sends after CONNECT
(TLS records carrying a ClientHello).  The output is deterministic; the files are committed,
rerun this script after changing the parsers:

    python3 tests/fuzz/gen-corpus-proxy.py tests/fuzz/corpus
"""
import os
import struct
import sys

# A real ClientHello (Python 3.11 ssl, OpenSSL 3.0, server_hostname='allowed.test').
REAL_HELLO = bytes.fromhex(
    "1603010200010001fc0303eb9aa3cdea790f7f12678b401cf3298457894448d64a415a04d07c4f9c5aef362089322d6bd197e6b7b85274f8a9cabe9ed802830431522a83824615472d940d700024130213031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f00000011000f00000c616c6c6f7765642e74657374000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00020101003300260024001d0020c486fd7a2d81f6e29306350f684b2bed0816205b87d3459ef27c8fd51c9bff39001500e1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000")

HTTP = [
    b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\nUser-Agent: curl/7.88\r\n"
    b"Proxy-Connection: Keep-Alive\r\n\r\n",
    b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.0\r\n\r\n",
    b"GET http://allowed.test/simple HTTP/1.1\r\nHost: allowed.test\r\nAccept: */*\r\n\r\n",
    b"GET http://allowed.test:8080/a?b=c HTTP/1.1\r\nHost: allowed.test:8080\r\n\r\n"
    b"GET http://allowed.test:8080/second HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"HEAD http://Allowed.Test./ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST http://allowed.test/form HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
    b"GET http://allowed.test/next HTTP/1.1\r\n\r\n",
    b"POST http://allowed.test/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    b"GET http://allowed.test/after HTTP/1.1\r\n\r\n",
    # bypass attempts and malformations the parser must refuse
    b"CONNECT 127.1:443 HTTP/1.1\r\n\r\n",
    b"CONNECT 2130706433:443 HTTP/1.1\r\n\r\n",
    b"CONNECT 0x7f.0.0.1:443 HTTP/1.1\r\n\r\n",
    b"CONNECT [::ffff:127.0.0.1]:443 HTTP/1.1\r\n\r\n",
    b"CONNECT evil-allowed.test:443 HTTP/1.1\r\n\r\n",
    b"CONNECT allowed.test.evil.test:443 HTTP/1.1\r\n\r\n",
    b"CONNECT /run/devbox/supervisor.sock HTTP/1.1\r\n\r\n",
    b"GET http://allowed.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n",
    b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nHost: evil.test\r\n\r\n",
    b"POST http://allowed.test/ HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    b"POST http://allowed.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4\r\nabc\r\n0\r\n\r\n",
    b"POST http://allowed.test/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    b"GET http://evil.test/ HTTP/1.1\r\n\r\n",
    b"GET http://allowed.test/ HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    b"GET http://allowed.test/ HTTP/1.1\nHost: allowed.test\n\n",
    b"GET http://user@allowed.test/ HTTP/1.1\r\n\r\n",
    b"GET https://allowed.test/ HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET http://allowed.test/ HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101))
    + b"\r\n",
]

NAMES = [b"allowed.test", b"*.githubusercontent.com", b"127.0.0.1:8443", b"[::1]:80",
         b"10.0.0.0/8", b"fd00::/8", b"[fd00:ec2::254]", b"0177.0.0.1", b"[fe80::1%25eth0]"]


def record(payload, version=0x0301):
    return struct.pack(">BHH", 22, version, len(payload)) + payload


def hello(sni, pad=0, nrec=1, dup=False):
    exts = b""
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + struct.pack(">H", len(name)) + name
        ext = struct.pack(">H", len(entry)) + entry
        exts += struct.pack(">HH", 0, len(ext)) + ext
        if dup:
            exts += struct.pack(">HH", 0, len(ext)) + ext
    if pad:
        exts += struct.pack(">HH", 21, pad) + bytes(pad)
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack(">H", len(exts)) + exts
    msg = b"\x01" + struct.pack(">I", len(body))[1:] + body
    out, step = b"", max(1, len(msg) // nrec)
    for i in range(nrec):
        part = msg[i * step:] if i == nrec - 1 else msg[i * step:(i + 1) * step]
        out += record(part)
    return out


TLS = [
    REAL_HELLO,
    hello("allowed.test"),
    hello("Allowed.Test."),
    hello(None),
    hello("allowed.test", pad=3000, nrec=4),
    hello("allowed.test", dup=True),
    hello("127.0.0.1"),
    hello("127.1"),
    hello("evil.test") + b"\x17\x03\x03\x00\x05hello",
    record(b""),
    b"GET / HTTP/1.1\r\n\r\n",
    REAL_HELLO[:100],
]


PH = b"devbox-secret-API_KEY-0123456789abcdef0123456789abcdef"
PH2 = b"devbox-secret-OTHER-fedcba9876543210fedcba9876543210"
SECRET = [
    b"\x00GET /v1/models HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer " + PH + b"\r\n\r\n",
    b"\x00POST /v1/messages HTTP/1.1\r\nHost: api.test\r\nx-api-key: " + PH + b"\r\n"
    b"Content-Length: 5\r\n\r\nhelloGET /again HTTP/1.1\r\nHost: api.test:443\r\n\r\n",
    b"\x00GET / HTTP/1.1\r\nHost: api.test\r\nX: " + PH2 + b"\r\n\r\n",
    b"\x01GET / HTTP/1.1\r\nHost: other.test\r\nX: a" + PH2 + b"b" + PH2 + b"\r\n\r\n",
    b"\x02GET /?k=" + PH.lower() + b" HTTP/1.1\r\nHost: plain.test\r\n\r\n",
    b"\x00GET / HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAA\r\n\r\n",
    b"\x00PUT /x HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\nDELETE /y HTTP/1.0\r\n\r\n",
    b"\x00OPTIONS * HTTP/1.1\r\nHost: api.test\r\n\r\n",
    b"\x00GET http://api.test/ HTTP/1.1\r\nHost: api.test\r\n\r\n",
    b"\x00CONNECT api.test:443 HTTP/1.1\r\nHost: api.test\r\n\r\n",
    b"\x01PATCH /p HTTP/1.1\r\nHost: x.other.test\r\nAuthorization: mine\r\n\r\n",
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus"
    for sub, items in (("proxy-http", [bytes([i % 7]) + r for i, r in enumerate(HTTP)]
                        + [b"\x00" + n for n in NAMES]),
                       ("proxy-tls", TLS), ("proxy-secret", SECRET)):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        for i, data in enumerate(items):
            with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
