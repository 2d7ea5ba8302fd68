"""A small typed helper over the generated stubs (wsgate.v1.*_pb2*): one WebSocket session per
Gateway.Connect stream.

    client = wsgate.connect()                      # $WSGATE_ADDRESS, else the default socket
    with client.open("wss://example.com/feed") as session:
        session.send("subscribe")                   # str: a text message, bytes: binary
        for message in session:                     # ends after the upstream's close
            print(message.data)
        session.close(1000, "bye")

Lifetime and threads: a Client owns one gRPC channel (close() or `with` releases it); sessions
opened on it must end first. A Session is one stream: send() and close() may be called from any
thread (the outgoing messages go through a queue that gRPC's sending thread drains); iterating
is for one thread at a time. Leaving a Session without close() ends the stream, and the daemon
closes the upstream connection with 1001.

Failures raise WsgateError, which carries the daemon's ErrorDetail (cause, HTTP status and
headers of a refused upgrade, engine HRESULT) and the retry delay a refusing server asked for.
"""
from __future__ import annotations

import email.utils
import os
import queue
import time
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Sequence, Union

import grpc

from google.rpc import status_pb2
from wsgate.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

__all__ = ["Client", "Closed", "Message", "Session", "WsgateError", "connect", "default_address"]


def default_address() -> str:
    """The daemon's gRPC target: $WSGATE_ADDRESS (a bare absolute path means a unix socket), else
    the daemon's default socket (the same rules as the C++ SDK's resolve_address())."""
    address = os.environ.get("WSGATE_ADDRESS", "")
    if address:
        return "unix:" + address if address.startswith("/") else address
    if os.geteuid() == 0:
        return "unix:/run/wsgate/wsgated.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return "unix:%s/wsgate/wsgated.sock" % runtime
    return "unix:/tmp/wsgate-%d/wsgated.sock" % os.geteuid()


class WsgateError(Exception):
    """A failed open, send or close: the gRPC status and the daemon's ErrorDetail.

    `cause` is the detail's stable machine-readable cause ("connection_refused",
    "upgrade_refused", ...; the list is in proto/wsgate/v1/common.proto), empty when the failure
    did not come from the daemon (e.g. the daemon is not running: code UNAVAILABLE).
    `retry_after` is the delay in seconds a server asked for in a Retry-After header of a refused
    upgrade (e.g. 503 or 429), else None.
    """

    def __init__(self, code: grpc.StatusCode, message: str,
                 detail: Optional[common_pb2.ErrorDetail] = None) -> None:
        self.code = code
        self.message = message
        self.detail = detail if detail is not None else common_pb2.ErrorDetail()
        super().__init__("%s: %s%s" % (code.name, message,
                                       " (cause %s)" % self.cause if self.cause else ""))

    @property
    def cause(self) -> str:
        return self.detail.cause

    @property
    def http_status(self) -> int:
        return self.detail.http_status

    @property
    def retry_after(self) -> Optional[float]:
        for h in self.detail.http_headers:
            if h.name.lower() == b"retry-after":
                value = h.value.decode("latin-1").strip()
                if value.isdigit():
                    return float(value)
                when = email.utils.parsedate_to_datetime(value) if value else None
                return max(0.0, when.timestamp() - time.time()) if when else None
        return None

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "WsgateError":
        """The ErrorDetail is in the google.rpc.Status of the grpc-status-details-bin trailer."""
        detail = None
        for key, value in (error.trailing_metadata() or ()):  # type: ignore[attr-defined]
            if key == "grpc-status-details-bin":
                for any_msg in status_pb2.Status.FromString(value).details:
                    candidate = common_pb2.ErrorDetail()
                    if any_msg.Unpack(candidate):
                        detail = candidate
        return cls(error.code(), error.details() or "", detail)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Message:
    """A whole WebSocket message (text: data is the UTF-8 bytes as sent by the server)."""
    data: bytes
    text: bool

    def decode(self) -> str:
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class Closed:
    """How the session ended: close code and reason, who closed first, and whether both close
    frames were exchanged."""
    code: int
    reason: str
    initiator: str   # "client", "server" or "gateway"
    clean: bool


_INITIATORS = {gateway_pb2.INITIATOR_CLIENT: "client", gateway_pb2.INITIATOR_SERVER: "server",
               gateway_pb2.INITIATOR_GATEWAY: "gateway"}
_END = object()


class Session:
    """One upstream WebSocket connection (made by Client.open)."""

    def __init__(self, outgoing: "queue.Queue[object]", stream: Iterator[gateway_pb2.ServerMessage],
                 call: grpc.Call, opened: gateway_pb2.Opened) -> None:
        self._outgoing = outgoing
        self._stream = stream
        self._call = call
        self.opened = opened
        self.closed: Optional[Closed] = None

    @property
    def id(self) -> str:
        return self.opened.session_id

    @property
    def subprotocol(self) -> str:
        return self.opened.subprotocol

    def send(self, data: Union[str, bytes]) -> None:
        """Queues one whole message: a str goes as a text message, bytes as a binary message."""
        if isinstance(data, str):
            self._outgoing.put(gateway_pb2.ClientMessage(text=data.encode("utf-8")))
        else:
            self._outgoing.put(gateway_pb2.ClientMessage(binary=bytes(data)))

    def _next(self) -> Optional[gateway_pb2.ServerMessage]:
        try:
            return next(self._stream)
        except StopIteration:
            return None
        except grpc.RpcError as e:
            self._outgoing.put(_END)
            raise WsgateError.from_rpc_error(e) from None

    def __iter__(self) -> Iterator[Message]:
        """Incoming messages until the session closes (then `closed` is set); pongs are skipped."""
        while self.closed is None:
            m = self._next()
            if m is None:
                return
            kind = m.WhichOneof("kind")
            if kind == "message":
                yield Message(m.message.data, m.message.text)
            elif kind == "closed":
                self._set_closed(m.closed)
            elif kind == "error":
                self._outgoing.put(_END)
                raise WsgateError(getattr(grpc.StatusCode, m.error.code, grpc.StatusCode.UNKNOWN),
                                  m.error.message, m.error.detail)

    def close(self, code: int = 1000, reason: str = "") -> Closed:
        """Sends the close and waits for the end of the session; messages that arrive meanwhile
        are dropped. Returns how the session closed."""
        if self.closed is None:
            self._outgoing.put(gateway_pb2.ClientMessage(
                close=gateway_pb2.Close(code=code, reason=reason)))
            for _ in self:
                pass
        self._outgoing.put(_END)
        if self.closed is None:
            raise WsgateError(grpc.StatusCode.UNKNOWN, "the stream ended without a close")
        return self.closed

    def _set_closed(self, c: gateway_pb2.Closed) -> None:
        self.closed = Closed(c.code, c.reason, _INITIATORS.get(c.initiator, "unspecified"),
                             c.clean)
        self._outgoing.put(_END)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        # Ending the request stream without a close: the daemon closes upstream with 1001.
        self._outgoing.put(_END)
        if self.closed is None:
            self._call.cancel()


class Client:
    """A gRPC channel to wsgated."""

    def __init__(self, address: Optional[str] = None) -> None:
        self.address = address or default_address()
        if self.address.startswith("/"):
            self.address = "unix:" + self.address
        self._channel = grpc.insecure_channel(self.address)
        self._gateway = gateway_pb2_grpc.GatewayStub(self._channel)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Waits until the channel is connected; WsgateError(UNAVAILABLE) after `timeout`."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise WsgateError(grpc.StatusCode.UNAVAILABLE,
                              "wsgated is not reachable at %s" % self.address) from None

    def open(self, url: str, *, subprotocols: Sequence[str] = (),
             headers: Optional[Mapping[str, str]] = None, connect_timeout: float = 0,
             handshake_timeout: float = 0, tls: Optional[gateway_pb2.TlsOptions] = None) -> Session:
        """Opens a WebSocket session to `url` (ws:// or wss://) through the daemon and waits for
        the upgrade. Timeouts are in seconds (0: the daemon's defaults). Raises WsgateError."""
        request = gateway_pb2.Open(url=url, subprotocols=list(subprotocols), headers=[
            common_pb2.HttpHeader(name=k.encode(), value=v.encode())
            for k, v in (headers or {}).items()])
        if connect_timeout > 0:
            request.timeouts.connect_ms = max(1, int(connect_timeout * 1000))
        if handshake_timeout > 0:
            request.timeouts.handshake_ms = max(1, int(handshake_timeout * 1000))
        if tls is not None:
            request.tls.CopyFrom(tls)
        outgoing: "queue.Queue[object]" = queue.Queue()
        outgoing.put(gateway_pb2.ClientMessage(open=request))

        def requests() -> Iterator[gateway_pb2.ClientMessage]:
            while True:
                m = outgoing.get()
                if m is _END:
                    return
                yield m  # type: ignore[misc]

        call = self._gateway.Connect(requests())
        session = Session(outgoing, call, call, gateway_pb2.Opened())
        first = session._next()
        if first is not None and first.WhichOneof("kind") == "opened":
            session.opened = first.opened
            return session
        if first is not None and first.WhichOneof("kind") == "error":
            # The status follows the in-band error: it carries the same detail.
            outgoing.put(_END)
            try:
                session._next()
            except WsgateError as e:
                raise e from None
            raise WsgateError(getattr(grpc.StatusCode, first.error.code, grpc.StatusCode.UNKNOWN),
                              first.error.message, first.error.detail)
        outgoing.put(_END)
        call.cancel()
        raise WsgateError(grpc.StatusCode.UNKNOWN, "the daemon did not answer the open")

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(address: Optional[str] = None, timeout: float = 10.0) -> Client:
    """A Client for `address` (a gRPC target: unix:/path, /path or host:port; default:
    default_address()), once its channel is connected."""
    client = Client(address)
    try:
        client.wait_ready(timeout)
    except BaseException:
        client.close()
        raise
    return client
