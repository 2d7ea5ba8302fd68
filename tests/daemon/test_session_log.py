"""A Gateway session's debug and trace lines (docs/operations.md, "Debug and trace events"):
the real daemon with JSON logs against a real echo server (servers.py). At debug: the destination
policy verdict, the upgrade steps and the close decision, each with the session's id, the request
target redacted; at info: none of them; at trace: each frame's opcode and length, never its
payload."""
import json
import unittest

from daemon_fixture import EchoServerTestCase, TlsEchoServerTestCase, gateway_pb2, wait_for

DEBUG_EVENTS = {"policy", "resolve", "connect", "connected", "upgrade_request", "upgrade_response",
                "negotiated", "close_sent", "close_decided", "timeout", "reads_paused",
                "reads_resumed", "queue_full", "queue_room"}
TRACE_EVENTS = {"frame", "read", "write"}


def events(daemon):
    return [json.loads(line) for line in daemon.log_text().splitlines() if line.startswith("{")]


class SessionLogCase(EchoServerTestCase):
    LEVEL = "info"

    @classmethod
    def setUpClass(cls):
        cls.CONFIG = {"log": {"format": "json", "level": cls.LEVEL}}
        super().setUpClass()

    def echo_session(self, payload, path="/dbg?token=SECRET42"):
        """Opens a session, echoes `payload`, closes with 1000; returns the session id once its
        close line is written."""
        s, opened = self.open_session(self.server.url + path)
        s.send_text(payload)
        self.assertEqual(s.recv_kind("message").data, payload.encode())
        s.send_close(1000)
        s.recv_kind("closed")
        sid = opened.session_id
        wait_for(lambda: any(e.get("session") == sid and e.get("event") == "close"
                             for e in events(self.daemon)), 10, what="the close line")
        return sid

    def of(self, sid, event):
        return [e for e in events(self.daemon) if e.get("session") == sid and e.get("event") == event]


class DebugLinesTest(SessionLogCase):
    LEVEL = "debug"

    def test_policy_handshake_and_close_decisions_carry_the_session(self):
        sid = self.echo_session("hello")
        policy = self.of(sid, "policy")
        self.assertTrue(policy, self.daemon.log_tail())
        self.assertEqual({(p["component"], p["level"], p["verdict"]) for p in policy},
                         {("net", "debug", "allowed")})
        self.assertEqual({p["check"] for p in policy}, {"host", "address"})
        self.assertEqual(self.of(sid, "connected")[0]["address"].split(" port ")[0], "127.0.0.1")
        request = self.of(sid, "upgrade_request")[0]
        self.assertEqual(request["component"], "gateway")
        self.assertTrue(request["target"].endswith("/dbg?token=***"), request["target"])
        self.assertGreater(request["bytes"], 0)
        self.assertEqual(self.of(sid, "upgrade_response")[0]["status"], 101)
        self.assertEqual(self.of(sid, "negotiated")[0]["subprotocol"], "")
        sent = self.of(sid, "close_sent")[0]
        self.assertEqual((sent["initiator"], sent["code"]), ("client", 1000))
        decided = self.of(sid, "close_decided")[0]
        self.assertEqual((decided["initiator"], decided["code"], decided["clean"], decided["cause"]),
                         ("client", 1000, True, ""))
        # In order: policy, upgrade, close.
        mine = [e["event"] for e in events(self.daemon) if e.get("session") == sid]
        self.assertLess(mine.index("policy"), mine.index("upgrade_request"))
        self.assertLess(mine.index("upgrade_response"), mine.index("close_sent"))
        self.assertLess(mine.index("close_sent"), mine.index("close_decided"))
        self.assertNotIn("SECRET42", self.daemon.log_text())
        self.assertFalse([e for e in events(self.daemon) if e.get("event") in TRACE_EVENTS])

    def test_a_denied_destination_names_the_rule(self):
        s = self.session()
        s.send_open("ws://169.254.169.254/")  # link-local: denied by default
        self.assertEqual(s.recv_kind("error").detail.cause, "destination_denied")
        denied = wait_for(lambda: [e for e in events(self.daemon)
                                   if e.get("event") == "policy" and e.get("verdict") == "denied"],
                          10, what="the denied verdict")
        self.assertEqual(denied[0]["subject"], "169.254.169.254")
        self.assertIn("link-local", denied[0]["rule"])
        self.assertTrue(denied[0]["session"])


class InfoLevelTest(SessionLogCase):
    LEVEL = "info"

    def test_no_decision_lines_at_info(self):
        sid = self.echo_session("hello")
        mine = [e for e in events(self.daemon) if e.get("session") == sid]
        self.assertEqual({e["event"] for e in mine}, {"open", "close"})
        self.assertFalse([e for e in events(self.daemon) if e["level"] in ("debug", "trace")])


class TraceLevelTest(SessionLogCase):
    LEVEL = "trace"
    PAYLOAD = "PAYLOAD-MARKER-77"

    def test_frames_show_opcode_and_length_not_the_payload(self):
        sid = self.echo_session(self.PAYLOAD)
        frames = self.of(sid, "frame")
        text = [(f["direction"], f["length"], f["fin"]) for f in frames if f["opcode"] == "text"]
        self.assertIn(("out", len(self.PAYLOAD), True), text)
        self.assertIn(("in", len(self.PAYLOAD), True), text)
        self.assertIn("close", {f["opcode"] for f in frames})
        self.assertEqual({f["level"] for f in frames}, {"trace"})
        self.assertTrue(self.of(sid, "write") and self.of(sid, "read"))
        self.assertNotIn(self.PAYLOAD, self.daemon.log_text())


class TlsDebugLinesTest(TlsEchoServerTestCase):
    CONFIG = {"log": {"format": "json", "level": "debug"}}

    def test_tls_handshake_line_names_version_cipher_and_verification(self):
        s, opened = self.open_session(self.server.url, tls=gateway_pb2.TlsOptions(ca_pem=self.ca_pem))
        s.send_close(1000)
        s.recv_kind("closed")
        tls = wait_for(lambda: [e for e in events(self.daemon)
                                if e.get("event") == "tls" and e.get("session") == opened.session_id],
                       10, what="the tls line")
        self.assertEqual((tls[0]["component"], tls[0]["verify"]), ("net", "ok"))
        self.assertTrue(tls[0]["version"].startswith("TLSv1."), tls[0])
        self.assertTrue(tls[0]["cipher"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
