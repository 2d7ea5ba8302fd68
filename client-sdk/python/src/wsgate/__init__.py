"""wsgate-client: the Python client of wsgated (the WebSocket gateway daemon).

`wsgate.connect()` / `Client.open()` / `Session` (wsgate.client) are a small API over the
generated gRPC stubs, which are importable too: `wsgate.v1.gateway_pb2`, `gateway_pb2_grpc`,
`admin_pb2_grpc`, `protocol_component_pb2_grpc`, `common_pb2`.
"""
from wsgate.client import (Client, Closed, Message, Session, WsgateError, connect,
                           default_address)

__all__ = ["Client", "Closed", "Message", "Session", "WsgateError", "connect", "default_address"]
__version__ = "0.1.0"
