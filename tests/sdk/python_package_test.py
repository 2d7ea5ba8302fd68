#!/usr/bin/python3
"""The Python package as a user gets it: `pip install ./client-sdk/python` into a new venv, then
its API against the real daemon, run by the venv's python.

    python_package_test.py SOURCE_DIR      (under with_daemon.py --echo --sdk-server)

The venv sees Debian's grpcio and protobuf (--system-site-packages); the install is offline
(--no-index, --no-build-isolation: Debian's setuptools builds it and protoc generates the stubs).
"""
import os
import subprocess
import sys
import tempfile

# Run by the venv's python: no path of the checkout is on sys.path, so `wsgate` is the installed
# package (asserted).
CHECK = r'''
import os, socket, sys
import wsgate
from wsgate.v1 import gateway_pb2

assert wsgate.__file__.startswith(sys.prefix), wsgate.__file__
assert os.path.exists(os.path.join(os.path.dirname(gateway_pb2.__file__), "gateway_pb2.pyi"))
echo_url = os.environ["WSGATE_ECHO_URL"]
sdk_url = os.environ["WSGATE_SDK_SERVER_URL"]

with wsgate.connect() as client:
    # Echo: text and binary, then a close we start.
    with client.open(echo_url) as s:
        assert s.id, s.opened
        s.send("alpha")
        s.send(b"\x00\x01beta")
        got = []
        for m in s:
            got.append(m)
            if len(got) == 2:
                break
        assert got == [wsgate.Message(b"alpha", True), wsgate.Message(b"\x00\x01beta", False)], got
        assert got[0].decode() == "alpha"
        closed = s.close(1000, "done")
        assert (closed.code, closed.reason, closed.initiator) == (1000, "done", "client"), closed
    print("echo ok")

    # Iteration ends at the server's close ("close-me": the echo server closes with 4000).
    with client.open(echo_url) as s:
        s.send("close-me")
        assert list(s) == [], "no message expected"
        assert s.closed == wsgate.Closed(4000, "server closing", "server", True), s.closed
    print("server close ok")

    # A failing open: nothing listens on the port.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    try:
        client.open("ws://127.0.0.1:%d/" % port)
        raise AssertionError("open succeeded")
    except wsgate.WsgateError as e:
        assert e.cause == "connection_refused", e
        assert e.code.name == "UNAVAILABLE", e
        assert e.retry_after is None
    print("refused ok")

    # Bad input: not a WebSocket URL.
    try:
        client.open("http://127.0.0.1/")
        raise AssertionError("open succeeded")
    except wsgate.WsgateError as e:
        assert e.cause == "bad_request" and e.code.name == "INVALID_ARGUMENT", e

    # A refused upgrade carries the status and the server's Retry-After.
    try:
        client.open(sdk_url + "busy")
        raise AssertionError("open succeeded")
    except wsgate.WsgateError as e:
        assert e.cause == "upgrade_refused", e
        assert e.http_status == 503 and e.retry_after == 7.0, (e, e.detail)
    print("upgrade refused ok")

# The daemon is not there: UNAVAILABLE from connect, no cause.
try:
    wsgate.connect("unix:/nonexistent/wsgated.sock", timeout=1)
    raise AssertionError("connect succeeded")
except wsgate.WsgateError as e:
    assert e.code.name == "UNAVAILABLE" and e.cause == "", e
print("all ok")
'''


def main():
    source = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="wsgate-pypkg-") as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                       check=True)
        python = os.path.join(venv, "bin", "python")
        subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                        "--quiet", os.path.join(source, "client-sdk", "python")],
                       check=True, cwd=tmp)
        out = subprocess.run([python, "-c", CHECK], cwd=tmp, capture_output=True, text=True)
        sys.stdout.write(out.stdout + out.stderr)
        if out.returncode != 0 or "all ok" not in out.stdout:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
