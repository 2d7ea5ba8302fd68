"""Shared helpers of the Python examples: daemon address, stubs import, ErrorDetail parsing.

The stubs are generated from the project's protos (proto/wsgate/v1/*.proto and
proto/google/rpc/status.proto) with protoc and grpc_python_plugin (Debian: protobuf-compiler,
protobuf-compiler-grpc); a CMake build leaves them in <build>/proto/python. Point
WSGATE_PROTO_PYTHON at that directory (or put it on PYTHONPATH).
"""
import os
import sys

_stubs = os.environ.get("WSGATE_PROTO_PYTHON")
if _stubs and _stubs not in sys.path:
    sys.path.insert(0, _stubs)

import grpc  # noqa: E402  (Debian: python3-grpcio)
from google.rpc import status_pb2  # noqa: E402
from wsgate.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc  # noqa: E402,F401


def daemon_address():
    """$WSGATE_ADDRESS, else the daemon's default socket (same rules as the C++ SDK)."""
    address = os.environ.get("WSGATE_ADDRESS")
    if address:
        return "unix:" + address if address.startswith("/") else address
    if os.geteuid() == 0:
        return "unix:/run/wsgate/wsgated.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return "unix:%s/wsgate/wsgated.sock" % runtime
    return "unix:/tmp/wsgate-%d/wsgated.sock" % os.geteuid()


def connect(timeout=10.0):
    channel = grpc.insecure_channel(daemon_address())
    grpc.channel_ready_future(channel).result(timeout=timeout)
    return channel


def error_detail(rpc_error):
    """The wsgate.v1.ErrorDetail inside the status of a failed call, or None."""
    for key, value in rpc_error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for any_msg in status.details:
                detail = common_pb2.ErrorDetail()
                if any_msg.Unpack(detail):
                    return detail
    return None
