#!/usr/bin/env python3
"""tests/e2e/old-supervisor.py RUN_DIR VERSION: stands in for the supervisor of another devbox
build, still serving its box across an upgrade: it holds RUN_DIR/alive.lock with its pid in it
(as a supervisor does), listens on RUN_DIR/sock, and answers every connection with an ERROR
frame of protocol VERSION (what such a supervisor does with a header of another version), then
closes it.  SIGTERM, which stops every version's supervisor, ends it: exit status 0."""
import fcntl
import os
import signal
import socket
import struct
import sys

run_dir, version = sys.argv[1], int(sys.argv[2])
lock = os.open(os.path.join(run_dir, "alive.lock"), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
os.ftruncate(lock, 0)
os.write(lock, b"%d\n" % os.getpid())
path = os.path.join(run_dir, "sock")
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)


def term(*_):
    os.unlink(path)
    sys.exit(0)


signal.signal(signal.SIGTERM, term)
msg = b"protocol version %d, expected %d" % (version + 1, version)  # a newer client
ERROR = 19
payload = struct.pack("<I", 2) + struct.pack("<I", len(msg)) + msg
# Python runs a signal's handler between bytecodes: one that comes just before a blocking
# accept() waited for the next connection (the stop's SIGTERM, now and then).  Short waits.
srv.settimeout(0.2)
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    c.settimeout(5)
    try:
        c.recv(12)  # the header it refuses
        c.sendall(struct.pack("<BBHII", version, ERROR, 0, 0, len(payload)) + payload)
    except OSError:
        pass
    c.close()
