"""The ProtocolComponent service driven from Python only: a client handle and a server handle of
the daemon's engine talk to each other through GetAction/CompleteAction, the test moving the
bytes between them (the websocket.h action loop, remotely). Also the daemon's bounds on queued
operations per handle and on handles per client."""
import os
import shutil
import subprocess
import unittest

import grpc

from daemon_fixture import (PROTO_PYTHON, DaemonTestCase, admin_pb2, common_pb2,
                            protocol_component_pb2 as pc, protocol_component_pb2_grpc,
                            rpc_error_detail)

E_INVALIDARG = 0x80070057
E_INVALID_OPERATION = 0x80000050
E_OUTOFMEMORY = 0x8007000E
CLIENT_ID = "daemon-test-client"
NOBODY = 65534
SETPRIV = shutil.which("setpriv")


def header(name, value):
    return common_pb2.HttpHeader(name=name.encode(), value=value.encode())


class Api:
    """Unary calls with this caller's identity (the wsgate-client-id metadata)."""

    def __init__(self, channel, client_id=CLIENT_ID):
        self.stub = protocol_component_pb2_grpc.ProtocolComponentStub(channel)
        self.metadata = (("wsgate-client-id", client_id),) if client_id is not None else ()

    def __getattr__(self, name):
        method = getattr(self.stub, name)
        return lambda request: method(request, metadata=self.metadata, timeout=10)

    def create(self, server, properties=()):
        request = pc.CreateHandleRequest(properties=list(properties))
        if server:
            return self.CreateServerHandle(request).handle
        return self.CreateClientHandle(request).handle

    def send(self, handle, buffer_type, data=None, context=0, close=None):
        request = pc.SendRequest(handle=handle, buffer_type=buffer_type, context=context)
        if close is not None:
            request.close.CopyFrom(pc.CloseStatus(status=close[0], reason=close[1]))
        elif data is not None:
            request.data = data
        return self.Send(request)

    def receive(self, handle, buffer_length=None, context=0):
        request = pc.ReceiveRequest(handle=handle, context=context)
        if buffer_length is not None:
            request.buffer_length = buffer_length
        return self.Receive(request)

    def get_action(self, handle):
        return self.GetAction(pc.GetActionRequest(handle=handle, queue=pc.ACTION_QUEUE_ALL,
                                                  buffer_capacity=2))

    def complete(self, handle, action_context, bytes_transferred=0, data=None):
        request = pc.CompleteActionRequest(handle=handle, action_context=action_context,
                                           bytes_transferred=bytes_transferred)
        if data is not None:
            request.data = data
        return self.CompleteAction(request)

    def delete(self, handle):
        return self.DeleteHandle(pc.HandleRequest(handle=handle))


class Endpoint:
    def __init__(self, api, handle):
        self.api = api
        self.handle = handle
        self.inbound = b""          # bytes the peer wrote, not read yet
        self.pending_read = None    # the outstanding RECEIVE_FROM_NETWORK action
        self.received = []          # (buffer_type, data, close_status, application_context)
        self.sends_completed = []   # (buffer_type, application_context)
        self.frames_written = []    # buffer_type of each SEND_TO_NETWORK

    def deliver_read(self):
        n = min(self.pending_read.receive_capacity, len(self.inbound))
        self.api.complete(self.handle, self.pending_read.action_context, data=self.inbound[:n])
        self.inbound = self.inbound[n:]
        self.pending_read = None

    def pump(self, peer):
        """Runs the action loop until NO_ACTION; written bytes go to peer.inbound."""
        progress = False
        if self.pending_read is not None and self.inbound:
            self.deliver_read()
            progress = True
        for _ in range(10000):
            a = self.api.get_action(self.handle)
            if a.action == pc.ACTION_NO_ACTION:
                return progress
            if a.action == pc.ACTION_SEND_TO_NETWORK:
                assert len(a.buffers) >= 1, a
                data = b"".join(a.buffers)
                peer.inbound += data
                self.frames_written.append(a.buffer_type)
                self.api.complete(self.handle, a.action_context, len(data))
            elif a.action == pc.ACTION_INDICATE_SEND_COMPLETE:
                self.sends_completed.append((a.buffer_type, a.application_context))
                self.api.complete(self.handle, a.action_context)
            elif a.action == pc.ACTION_RECEIVE_FROM_NETWORK:
                assert a.receive_capacity > 0, a
                self.pending_read = a
                if self.inbound:
                    self.deliver_read()
            elif a.action == pc.ACTION_INDICATE_RECEIVE_COMPLETE:
                if a.buffer_type == pc.BUFFER_TYPE_CLOSE:
                    item = (a.buffer_type, a.close_status.reason, a.close_status.status,
                            a.application_context)
                else:
                    assert len(a.buffers) == 1, a
                    item = (a.buffer_type, a.buffers[0], 0, a.application_context)
                self.received.append(item)
                self.api.complete(self.handle, a.action_context)
            else:
                raise AssertionError("unexpected action %s" % a)
            progress = True
        raise AssertionError("the action loop did not settle")


def exchange(a, b):
    for _ in range(1000):
        pa = a.pump(b)
        pb = b.pump(a)
        if not pa and not pb:
            return
    raise AssertionError("the exchange did not settle")


FINAL_TYPES = {pc.BUFFER_TYPE_UTF8_MESSAGE, pc.BUFFER_TYPE_BINARY_MESSAGE, pc.BUFFER_TYPE_CLOSE,
               pc.BUFFER_TYPE_PING_PONG, pc.BUFFER_TYPE_UNSOLICITED_PONG}


def receive_message(me, peer, buffer_length=None, context=0):
    """Queues Receives on `me` until a final indication; returns that message's indications."""
    start = len(me.received)
    for _ in range(200):
        me.api.receive(me.handle, buffer_length, context)
        before = len(me.received)
        exchange(me, peer)
        if len(me.received) == before:
            raise AssertionError("no indication for a queued Receive")
        if me.received[-1][0] in FINAL_TYPES:
            break
    return me.received[start:]


def concat(parts):
    return b"".join(p[1] for p in parts)


class ProtocolComponentCase(DaemonTestCase):
    """Helpers shared by the test classes below (no tests of its own)."""

    def setUp(self):
        super().setUp()
        self.api = Api(self.daemon.channel)
        self.handles = []

    def tearDown(self):
        for h in self.handles:
            try:
                self.api.delete(h)
            except grpc.RpcError:
                pass
        super().tearDown()

    def create(self, server, api=None):
        h = (api or self.api).create(server)
        self.assertNotEqual(h, 0)
        if api is None:
            self.handles.append(h)
        return h

    def expect_error(self, call, code, symbol, cause=None):
        with self.assertRaises(grpc.RpcError) as raised:
            call()
        error = raised.exception
        self.assertEqual(error.code(), code, error.details())
        detail = rpc_error_detail(error)
        self.assertIsNotNone(detail, "no ErrorDetail in %s" % (error.trailing_metadata(),))
        self.assertEqual(detail.hresult_symbol, symbol, error.details())
        if cause is not None:
            self.assertEqual(detail.cause, cause)
        return error, detail

    def open_pair(self):
        client = Endpoint(self.api, self.create(False))
        server = Endpoint(self.api, self.create(True))
        self.assertNotEqual(client.handle, server.handle)
        bch = self.api.BeginClientHandshake(pc.BeginClientHandshakeRequest(
            handle=client.handle, subprotocols=["chat", "superchat"],
            initial_headers=[header("Host", "example.com")]))
        names = [h.name for h in bch.additional_headers]
        self.assertEqual(names[:4], [b"Connection", b"Upgrade", b"Sec-WebSocket-Key",
                                     b"Sec-WebSocket-Version"])
        bsh = self.api.BeginServerHandshake(pc.BeginServerHandshakeRequest(
            handle=server.handle, subprotocol_selected="superchat",
            request_headers=list(bch.additional_headers) + [header("Host", "example.com")]))
        self.assertIn(b"Sec-WebSocket-Accept", [h.name for h in bsh.response_headers])
        self.api.EndServerHandshake(pc.HandleRequest(handle=server.handle))
        ech = self.api.EndClientHandshake(pc.EndClientHandshakeRequest(
            handle=client.handle, response_headers=list(bsh.response_headers)))
        self.assertTrue(ech.HasField("selected_subprotocol"))
        self.assertEqual(ech.selected_subprotocol, 1)  # "superchat"
        self.assertEqual(list(ech.selected_extensions), [])
        return client, server

    def protocol_handles(self):
        return self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5).protocol_handles

    def other_connection(self):
        """A unix connection of its own: on the unix socket a handle belongs to the connection
        that created it, whatever wsgate-client-id a caller declares (test_peer_identity.py)."""
        channel = grpc.insecure_channel("unix:" + self.daemon.socket_path,
                                        options=[("grpc.use_local_subchannel_pool", 1)])
        self.addCleanup(channel.close)
        return channel


class ProtocolComponentTest(ProtocolComponentCase):
    def test_full_exchange(self):
        handles_before = self.protocol_handles()
        client, server = self.open_pair()
        self.assertEqual(self.protocol_handles(), handles_before + 2)

        # Text, client -> server, zero-copy; the contexts come back.
        self.api.send(client.handle, pc.BUFFER_TYPE_UTF8_MESSAGE, b"hello", context=11)
        text = receive_message(server, client, context=21)
        self.assertEqual(text, [(pc.BUFFER_TYPE_UTF8_MESSAGE, b"hello", 0, 21)])
        self.assertEqual(client.sends_completed, [(pc.BUFFER_TYPE_UTF8_MESSAGE, 11)])

        # Binary, server -> client, into 100-byte app buffers: three chunks.
        blob = bytes((i * 7) & 0xFF for i in range(300))
        self.api.send(server.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, blob, context=12)
        parts = receive_message(client, server, buffer_length=100, context=22)
        self.assertEqual([p[0] for p in parts], [pc.BUFFER_TYPE_BINARY_FRAGMENT,
                                                 pc.BUFFER_TYPE_BINARY_FRAGMENT,
                                                 pc.BUFFER_TYPE_BINARY_MESSAGE])
        self.assertEqual(concat(parts), blob)
        self.assertEqual(server.sends_completed, [(pc.BUFFER_TYPE_BINARY_MESSAGE, 12)])

        # A large masked message: several network actions, zero-copy chunks.
        big = bytes(i % 251 for i in range(100000))
        self.api.send(client.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, big, context=13)
        parts = receive_message(server, client, context=23)
        self.assertGreaterEqual(len(parts), 2)
        self.assertEqual(parts[-1][0], pc.BUFFER_TYPE_BINARY_MESSAGE)
        self.assertEqual(concat(parts), big)

        # Text fragments, one splitting a UTF-8 sequence.
        self.api.send(client.handle, pc.BUFFER_TYPE_UTF8_FRAGMENT, b"Hel", context=14)
        self.api.send(client.handle, pc.BUFFER_TYPE_UTF8_FRAGMENT, b"lo, w\xc3", context=15)
        self.api.send(client.handle, pc.BUFFER_TYPE_UTF8_MESSAGE, b"\xb6rld", context=16)
        parts = receive_message(server, client, buffer_length=64, context=24)
        self.assertEqual([p[0] for p in parts], [pc.BUFFER_TYPE_UTF8_FRAGMENT,
                                                 pc.BUFFER_TYPE_UTF8_FRAGMENT,
                                                 pc.BUFFER_TYPE_UTF8_MESSAGE])
        self.assertEqual(concat(parts), "Hello, w\u00f6rld".encode())

        # An empty binary message.
        self.api.send(server.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, b"", context=17)
        self.assertEqual(receive_message(client, server, context=25),
                         [(pc.BUFFER_TYPE_BINARY_MESSAGE, b"", 0, 25)])

        # Ping from the client: the server answers by itself; the client sees the pong.
        self.api.receive(server.handle, context=40)
        self.api.send(client.handle, pc.BUFFER_TYPE_PING_PONG, context=31)
        server_received = len(server.received)
        pong = receive_message(client, server, context=41)
        self.assertEqual(len(pong), 1)
        self.assertEqual((pong[0][0], pong[0][3]), (pc.BUFFER_TYPE_PING_PONG, 41))
        self.assertEqual(len(server.received), server_received)  # the ping is not indicated
        self.assertEqual(server.frames_written[-1], pc.BUFFER_TYPE_PING_PONG)
        self.assertEqual(client.sends_completed[-1], (pc.BUFFER_TYPE_PING_PONG, 31))

        # Close, client first: the server's pending Receive (context 40) gets it.
        self.api.send(client.handle, pc.BUFFER_TYPE_CLOSE, close=(1000, b"bye"), context=32)
        exchange(client, server)
        self.assertEqual(server.received[-1], (pc.BUFFER_TYPE_CLOSE, b"bye", 1000, 40))
        # Data after our close is refused.
        self.expect_error(lambda: self.api.send(client.handle, pc.BUFFER_TYPE_UTF8_MESSAGE,
                                                b"late"),
                          grpc.StatusCode.FAILED_PRECONDITION, "E_INVALID_PROTOCOL_OPERATION")
        # The server closes back; the client receives it into an app buffer.
        self.api.send(server.handle, pc.BUFFER_TYPE_CLOSE, close=(1001, b"going away"),
                      context=33)
        close = receive_message(client, server, buffer_length=16, context=42)
        self.assertEqual(close, [(pc.BUFFER_TYPE_CLOSE, b"going away", 1001, 42)])
        self.assertEqual(server.sends_completed[-1], (pc.BUFFER_TYPE_CLOSE, 33))
        self.assertEqual(client.sends_completed[-1], (pc.BUFFER_TYPE_CLOSE, 32))
        self.assertEqual((client.inbound, server.inbound), (b"", b""))

        self.api.delete(client.handle)
        self.api.delete(server.handle)
        self.handles.clear()
        self.assertEqual(self.protocol_handles(), handles_before)

    def test_default_bounds_refuse_the_unbounded_workloads(self):
        """The issue's workloads (1 MiB Sends and zero-copy Receives without driving the action
        loop) against the default configuration: refused at the documented bounds."""
        client, server = self.open_pair()
        mib = b"m" * (1 << 20)
        for i in range(16):  # max_protocol_queued_bytes: 16 MiB
            self.api.send(client.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, mib, context=i)
        _, detail = self.expect_error(
            lambda: self.api.send(client.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, mib),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "E_OUTOFMEMORY", "handle_queue_limit")
        self.assertEqual(detail.hresult_value, E_OUTOFMEMORY)
        for i in range(1024):  # max_protocol_pending_operations
            self.api.receive(server.handle, context=i)
        self.expect_error(lambda: self.api.receive(server.handle),
                          grpc.StatusCode.RESOURCE_EXHAUSTED, "E_OUTOFMEMORY",
                          "handle_queue_limit")
        # (That the room comes back once the loop is driven: ProtocolComponentBoundsTest.)

    def test_server_closes_first(self):
        client, server = self.open_pair()
        self.api.send(server.handle, pc.BUFFER_TYPE_UTF8_MESSAGE, b"before close")
        self.assertEqual(concat(receive_message(client, server)), b"before close")
        self.api.send(server.handle, pc.BUFFER_TYPE_CLOSE, close=(4000, b""), context=1)
        close = receive_message(client, server, context=2)
        self.assertEqual(close, [(pc.BUFFER_TYPE_CLOSE, b"", 4000, 2)])
        self.api.send(client.handle, pc.BUFFER_TYPE_CLOSE, close=(4000, b""), context=3)
        back = receive_message(server, client, context=4)
        self.assertEqual(back, [(pc.BUFFER_TYPE_CLOSE, b"", 4000, 4)])

    def test_abort_completes_a_pending_receive_with_1006(self):
        client, server = self.open_pair()
        self.api.receive(server.handle, buffer_length=8, context=9)
        self.api.AbortHandle(pc.HandleRequest(handle=server.handle))
        exchange(server, client)
        self.assertEqual(server.received, [(pc.BUFFER_TYPE_CLOSE, b"", 1006, 9)])

    def test_peer_violation_is_data_loss(self):
        client, server = self.open_pair()
        self.api.receive(server.handle)
        a = self.api.get_action(server.handle)
        self.assertEqual(a.action, pc.ACTION_RECEIVE_FROM_NETWORK)
        # An unmasked text frame to a server: a protocol violation (1002).
        self.api.complete(server.handle, a.action_context, data=b"\x81\x02hi")
        error, _ = self.expect_error(lambda: self.api.get_action(server.handle),
                                     grpc.StatusCode.DATA_LOSS, "E_INVALID_PROTOCOL_FORMAT")
        self.assertIn("1002", error.details())

    def test_random_handle_is_not_found(self):
        mine = self.create(False)
        forged = int.from_bytes(os.urandom(8), "little") or 1
        if forged == mine:
            forged ^= 1
        self.expect_not_found(self.api, forged)
        self.expect_not_found(self.api, 0)

    def test_foreign_handle_is_not_found(self):
        h = self.create(False)
        channel = self.other_connection()
        for other in (Api(channel, "another-client"), Api(channel, CLIENT_ID), Api(channel, None)):
            self.expect_not_found(other, h)
        # The owner's handle is untouched by the others' DeleteHandle.
        self.api.BeginClientHandshake(pc.BeginClientHandshakeRequest(handle=h))
        # And handles of another caller are not ours.
        other = Api(channel, "another-client")
        theirs = other.create(True)
        try:
            self.expect_not_found(self.api, theirs)
        finally:
            other.delete(theirs)

    def test_stale_handle_is_not_found(self):
        h = self.api.create(True)
        self.api.delete(h)
        self.expect_not_found(self.api, h)

    def expect_not_found(self, api, handle):
        calls = {
            "BeginClientHandshake": lambda: api.BeginClientHandshake(
                pc.BeginClientHandshakeRequest(handle=handle)),
            "EndClientHandshake": lambda: api.EndClientHandshake(
                pc.EndClientHandshakeRequest(handle=handle)),
            "BeginServerHandshake": lambda: api.BeginServerHandshake(
                pc.BeginServerHandshakeRequest(handle=handle)),
            "EndServerHandshake": lambda: api.EndServerHandshake(pc.HandleRequest(handle=handle)),
            "Send": lambda: api.send(handle, pc.BUFFER_TYPE_UTF8_MESSAGE, b"x"),
            "Receive": lambda: api.receive(handle),
            "GetAction": lambda: api.get_action(handle),
            "CompleteAction": lambda: api.complete(handle, 1),
            "AbortHandle": lambda: api.AbortHandle(pc.HandleRequest(handle=handle)),
            "DeleteHandle": lambda: api.delete(handle),
        }
        for name, call in calls.items():
            with self.subTest(rpc=name, handle=handle):
                _, detail = self.expect_error(call, grpc.StatusCode.NOT_FOUND, "E_INVALIDARG",
                                              "unknown_handle")
                self.assertEqual(detail.hresult_value, E_INVALIDARG)

    def test_send_before_handshake(self):
        h = self.create(False)
        _, detail = self.expect_error(
            lambda: self.api.send(h, pc.BUFFER_TYPE_UTF8_MESSAGE, b"early"),
            grpc.StatusCode.FAILED_PRECONDITION, "E_INVALID_OPERATION", "invalid_operation")
        self.assertEqual(detail.hresult_value, E_INVALID_OPERATION)
        self.expect_error(lambda: self.api.get_action(h), grpc.StatusCode.FAILED_PRECONDITION,
                          "E_INVALID_OPERATION")

    def test_invalid_arguments(self):
        h = self.create(False)
        self.expect_error(lambda: self.api.send(h, pc.BUFFER_TYPE_UNSPECIFIED, b"x"),
                          grpc.StatusCode.INVALID_ARGUMENT, "E_INVALIDARG")
        self.expect_error(
            lambda: self.api.create(False, [pc.Property(type=pc.PROPERTY_TYPE_ALLOCATED_BUFFER,
                                                        uint_value=1)]),
            grpc.StatusCode.INVALID_ARGUMENT, "E_INVALIDARG")
        self.expect_error(
            lambda: self.api.create(False, [pc.Property(type=pc.PROPERTY_TYPE_RECEIVE_BUFFER_SIZE,
                                                        uint_value=1)]),
            grpc.StatusCode.INVALID_ARGUMENT, "E_INVALIDARG")


class ProtocolComponentBoundsTest(ProtocolComponentCase):
    """The per-handle bounds and the per-client handle quota, configured small."""

    QUEUED_BYTES = 4096
    PENDING = 8
    QUOTA = 3
    CONFIG = {"limits": {"max_protocol_queued_bytes": QUEUED_BYTES,
                         "max_protocol_pending_operations": PENDING,
                         "max_protocol_handles_per_client": QUOTA},
              "listen": {"unix_socket_mode": 0o666}}  # create_as: another uid connects

    def expect_exhausted(self, call, cause):
        _, detail = self.expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "E_OUTOFMEMORY",
                                      cause)
        self.assertEqual(detail.hresult_value, E_OUTOFMEMORY)

    def test_queued_send_bytes_are_bounded_per_handle(self):
        client, server = self.open_pair()
        chunk = bytes(range(256)) * 4
        for i in range(self.QUEUED_BYTES // len(chunk)):
            self.api.send(client.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, chunk, context=i + 1)
        # Without driving the action loop, the next byte is refused instead of kept.
        self.expect_exhausted(lambda: self.api.send(client.handle, pc.BUFFER_TYPE_BINARY_MESSAGE,
                                                    b"x"), "handle_queue_limit")
        self.expect_exhausted(lambda: self.api.receive(client.handle, buffer_length=1),
                              "handle_queue_limit")
        # Driving it gives the room back; nothing accepted was lost.
        client.pump(server)
        self.assertEqual(client.sends_completed,
                         [(pc.BUFFER_TYPE_BINARY_MESSAGE, i + 1) for i in range(4)])
        for _ in range(4):
            self.assertEqual(concat(receive_message(server, client)), chunk)
        self.api.send(client.handle, pc.BUFFER_TYPE_BINARY_MESSAGE, b"y" * self.QUEUED_BYTES)
        self.assertEqual(concat(receive_message(server, client)), b"y" * self.QUEUED_BYTES)

    def test_zero_copy_receives_are_bounded_per_handle(self):
        client, server = self.open_pair()
        for i in range(self.PENDING):
            self.api.receive(server.handle, context=i + 1)
        self.expect_exhausted(lambda: self.api.receive(server.handle), "handle_queue_limit")
        self.expect_exhausted(lambda: self.api.send(server.handle, pc.BUFFER_TYPE_UTF8_MESSAGE,
                                                    b"no room"), "handle_queue_limit")
        self.api.send(client.handle, pc.BUFFER_TYPE_UTF8_MESSAGE, b"hi")
        exchange(client, server)
        self.assertEqual(server.received, [(pc.BUFFER_TYPE_UTF8_MESSAGE, b"hi", 0, 1)])
        self.api.receive(server.handle)  # one completed: one slot free

    def test_handle_quota_per_client(self):
        mine = [self.create(i % 2 == 0) for i in range(self.QUOTA)]
        self.expect_exhausted(lambda: self.api.create(True), "handle_quota")
        # The quota is the caller's uid's (SO_PEERCRED): a new connection does not dodge it...
        same_uid = Api(self.other_connection(), "another-client")
        self.expect_exhausted(lambda: same_uid.create(True), "handle_quota")
        # ...and another uid is not locked out.
        if SETPRIV and os.geteuid() == 0:
            self.assertEqual(self.create_as(NOBODY, 2), ["OK", "OK"])
        # Deleting one of ours gives our slot back.
        self.api.delete(mine[0])
        self.handles.remove(mine[0])
        self.create(False)
        self.expect_exhausted(lambda: self.api.create(False), "handle_quota")

    def create_as(self, uid, count):
        """Creates and deletes `count` handles from a client process running as `uid`; one line
        per handle: 'OK' or the status code's name."""
        os.chmod(self.daemon.dir, 0o755)  # the socket itself is 0666 (CONFIG)
        script = (
            "import sys, grpc\n"
            "sys.path.insert(0, %r)\n"
            "from wsgate.v1 import protocol_component_pb2 as pc, protocol_component_pb2_grpc\n"
            "stub = protocol_component_pb2_grpc.ProtocolComponentStub(\n"
            "    grpc.insecure_channel('unix:' + %r))\n"
            "handles = []\n"
            "for _ in range(%d):\n"
            "    try:\n"
            "        handles.append(stub.CreateServerHandle(pc.CreateHandleRequest(),\n"
            "                                               timeout=10).handle)\n"
            "        print('OK')\n"
            "    except grpc.RpcError as e:\n"
            "        print(e.code().name)\n"
            "for h in handles:\n"
            "    stub.DeleteHandle(pc.HandleRequest(handle=h), timeout=10)\n"
        ) % (PROTO_PYTHON, self.daemon.socket_path, count)
        r = subprocess.run([SETPRIV, "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                            "/usr/bin/python3", "-c", script],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()


if __name__ == "__main__":
    unittest.main()
