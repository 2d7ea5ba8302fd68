"""Who owns a ProtocolComponent handle on the unix socket: the connection (the daemon accepts it
itself and knows it by its kernel credentials), not the self-declared wsgate-client-id.

Each client here has a channel of its own with a local subchannel pool, so it is one unix
connection of its own (Python's gRPC otherwise shares connections between channels to the same
target).
"""
import unittest

import grpc

from daemon_fixture import (START_TIMEOUT, DaemonTestCase, admin_pb2, protocol_component_pb2 as pc,
                            protocol_component_pb2_grpc, wait_for)

CLIENT_ID = "same-self-declared-id"


class Client:
    """One unix connection to the daemon, calling ProtocolComponent with a wsgate-client-id."""

    def __init__(self, daemon, client_id=CLIENT_ID):
        self.channel = grpc.insecure_channel("unix:" + daemon.socket_path,
                                             options=[("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT)
        self.stub = protocol_component_pb2_grpc.ProtocolComponentStub(self.channel)
        self.metadata = (("wsgate-client-id", client_id),)

    def create(self):
        return self.stub.CreateClientHandle(pc.CreateHandleRequest(), metadata=self.metadata,
                                            timeout=10).handle

    def begin(self, handle):
        return self.stub.BeginClientHandshake(pc.BeginClientHandshakeRequest(handle=handle),
                                              metadata=self.metadata, timeout=10)

    def delete(self, handle):
        return self.stub.DeleteHandle(pc.HandleRequest(handle=handle), metadata=self.metadata,
                                      timeout=10)

    def close(self):
        self.channel.close()


class PeerIdentityTest(DaemonTestCase):
    def client(self):
        c = Client(self.daemon)
        self.addCleanup(c.close)
        return c

    def protocol_handles(self):
        return self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=10).protocol_handles

    def test_another_connection_cannot_use_or_delete_a_handle(self):
        """Same wsgate-client-id, another connection: NOT_FOUND. (Through gRPC's own listener
        every unix caller was the peer "unix:<path>", so the self-declared id was all that told
        two clients apart.)"""
        owner, intruder = self.client(), self.client()
        handle = owner.create()
        for call in (intruder.begin, intruder.delete):
            with self.assertRaises(grpc.RpcError) as cm:
                call(handle)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        owner.begin(handle)  # still the owner's, untouched by the intruder's DeleteHandle
        owner.delete(handle)

    def test_closing_a_connection_releases_its_handles(self):
        """The PeerDirectory retires the closed connection and release_owner("conn:<id>")
        deletes its handles."""
        before = self.protocol_handles()
        owner, other = self.client(), self.client()
        for _ in range(3):
            owner.create()
        kept = other.create()
        self.assertEqual(self.protocol_handles(), before + 4)
        owner.close()
        wait_for(lambda: self.protocol_handles() == before + 1, 10,
                 what="the closed connection's handles to be released")
        other.begin(kept)  # the other connection's handle is untouched
        other.delete(kept)


if __name__ == "__main__":
    unittest.main()
