"""The metrics endpoint (metrics.listen) against a real daemon: live counters during a session,
the exposition validated by promtool, Debian's Prometheus scraping it and answering a PromQL
query, 404 for other paths, the unix-socket variant, and Admin.GetStats reading the same live
counters."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from daemon_fixture import Daemon, EchoServerTestCase, admin_pb2, wait_for

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
SCRAPE_TIMEOUT = 10.0


def metrics_address(daemon):
    """The address the daemon logged for metrics.listen (port 0 is resolved there)."""
    found = wait_for(lambda: re.search(r"metrics: serving (\S+)", daemon.log_text()), 10,
                     what="the metrics address in the log")
    return found.group(1)


def http_get(url, path=None, method="GET"):
    """(status, body) of one request to http://host:port/..."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=SCRAPE_TIMEOUT)
    try:
        conn.request(method, path or parts.path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def unix_get(path, target="/metrics"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(SCRAPE_TIMEOUT)
    try:
        s.connect(path)
        s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def parse(text):
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MetricsTest(EchoServerTestCase):
    CONFIG = {"metrics": {"listen": "127.0.0.1:0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.url = metrics_address(cls.daemon)

    def scrape(self):
        status, body = http_get(self.url)
        self.assertEqual(status, 200, body)
        return parse(body)

    def test_live_counters_while_a_session_is_open(self):
        before = self.scrape()
        stats_before = self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        s, _ = self.open_session(self.server.url)
        payload = b"x" * 1000
        s.send_binary(payload)
        self.assertEqual(s.recv_kind("message").data, payload)

        def delta(m, key):
            return m.get(key, 0) - before.get(key, 0)

        # Still open: the counters include it (they counted only closed sessions before).
        m = self.scrape()
        self.assertEqual(delta(m, 'wsgate_payload_bytes_total{direction="sent"}'), 1000)
        self.assertEqual(delta(m, 'wsgate_payload_bytes_total{direction="received"}'), 1000)
        self.assertEqual(delta(m, 'wsgate_messages_total{direction="sent"}'), 1)
        self.assertEqual(delta(m, 'wsgate_messages_total{direction="received"}'), 1)
        self.assertEqual(m['wsgate_sessions_active{state="open"}'], 1)
        self.assertEqual(delta(m, "wsgate_session_opens_total"), 1)
        # The open fed both latency histograms once.
        self.assertEqual(delta(m, "wsgate_connect_latency_seconds_count"), 1)
        self.assertEqual(delta(m, "wsgate_handshake_latency_seconds_count"), 1)
        self.assertIn("wsgate_gateway_queued_bytes", m)
        stats = self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertEqual(stats.bytes_sent - stats_before.bytes_sent, 1000)
        self.assertEqual(stats.bytes_received - stats_before.bytes_received, 1000)

        s.send_close(1000)
        s.recv_kind("closed")
        s.wait_done()
        wait_for(lambda: self.scrape()['wsgate_sessions_active{state="open"}'] == 0, 10,
                 what="the session to leave the registry")
        # Closed: moved to the totals of ended sessions, counted once.
        m = self.scrape()
        self.assertEqual(m["wsgate_gateway_queued_bytes"], 0)  # every charge given back
        self.assertEqual(delta(m, 'wsgate_payload_bytes_total{direction="sent"}'), 1000)
        self.assertEqual(delta(m, 'wsgate_payload_bytes_total{direction="received"}'), 1000)
        stats = self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        self.assertEqual(stats.bytes_sent - stats_before.bytes_sent, 1000)

    def test_failures_by_cause_and_process_figures(self):
        s = self.session()
        s.send_open("ws://127.0.0.1:%d/" % free_port())  # nobody listens there
        s.wait_done()
        m = self.scrape()
        self.assertGreaterEqual(m.get('wsgate_session_failures_total{cause="connection_refused"}', 0), 1,
                                sorted(k for k in m if "failures" in k))
        self.assertGreater(m["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(m["process_open_fds"], 3)
        self.assertGreaterEqual(m["process_threads"], 2)
        self.assertGreaterEqual(m["wsgate_grpc_calls_total"], 1)
        self.assertIn("wsgate_protocol_handles", m)
        self.assertEqual(m['wsgate_connect_latency_seconds_bucket{le="+Inf"}'],
                         m["wsgate_connect_latency_seconds_count"])

    def test_grpc_calls_are_counted_while_they_run_and_after(self):
        wait_for(lambda: self.scrape()["wsgate_grpc_calls_active"] == 0, 10,
                 what="the calls of earlier tests to end")
        before = self.scrape()["wsgate_grpc_calls_total"]
        for _ in range(3):
            self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        s, _ = self.open_session(self.server.url)  # one stream in progress
        self.assertEqual(self.scrape()["wsgate_grpc_calls_total"] - before, 4)
        # A finished call is counted until gRPC destroys it, a moment after the client has its
        # answer: wait for the three unary calls to go, leaving the stream.
        wait_for(lambda: self.scrape()["wsgate_grpc_calls_active"] == 1, 10,
                 what="only the stream to be in progress")
        s.send_close(1000)
        s.recv_kind("closed")
        s.wait_done()
        wait_for(lambda: self.scrape()["wsgate_grpc_calls_active"] == 0, 10, what="the stream to end")

    @unittest.skipUnless(PROMTOOL, "promtool (Debian package prometheus) is not installed")
    def test_promtool_accepts_the_exposition(self):
        s, _ = self.open_session(self.server.url)  # so every family has samples
        _, body = http_get(self.url)
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        s.send_close(1000)
        s.recv_kind("closed")

    def test_other_paths_and_methods(self):
        self.assertEqual(http_get(self.url, "/")[0], 404)
        self.assertEqual(http_get(self.url, "/metricsx")[0], 404)
        self.assertEqual(http_get(self.url, method="POST")[0], 405)
        self.assertEqual(http_get(self.url, "/metrics?x=1")[0], 200)

    def test_a_request_head_past_the_limit_is_refused(self):
        parts = urllib.parse.urlsplit(self.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=SCRAPE_TIMEOUT) as c:
            c.sendall(b"GET /metrics HTTP/1.1\r\nX-Fill: " + b"a" * 20000)
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 431"), data[:80])
        self.assert_alive_and_serving()

    @unittest.skipUnless(PROMETHEUS, "prometheus (Debian package prometheus) is not installed")
    def test_prometheus_scrapes_the_daemon(self):
        s, _ = self.open_session(self.server.url)
        s.send_text(b"hello")
        s.recv_kind("message")
        s.send_close(1000)
        s.recv_kind("closed")
        s.wait_done()
        expected = self.scrape()["wsgate_session_opens_total"]
        self.assertGreaterEqual(expected, 1)

        target = urllib.parse.urlsplit(self.url).netloc
        work = tempfile.mkdtemp(prefix="wsgd-prom-")
        port = free_port()
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: wsgated\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        log = open(os.path.join(work, "prometheus.log"), "wb")
        prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(work, "data"),
             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            query = urllib.parse.urlencode({"query": 'wsgate_session_opens_total{job="wsgated"}'})
            api = "http://127.0.0.1:%d/api/v1/query?%s" % (port, query)

            def answered():
                if prom.poll() is not None:
                    with open(os.path.join(work, "prometheus.log"), "rb") as f:
                        raise AssertionError("prometheus exited: " + f.read().decode()[-2000:])
                try:
                    with urllib.request.urlopen(api, timeout=2) as r:
                        data = json.load(r)
                except OSError:
                    return None
                result = data.get("data", {}).get("result", [])
                return float(result[0]["value"][1]) if result else None

            value = wait_for(answered, 60, interval=0.2, what="Prometheus to scrape wsgated")
            self.assertEqual(value, expected)
        finally:
            prom.terminate()
            try:
                prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait(timeout=20)
            log.close()
            shutil.rmtree(work, ignore_errors=True)


class UnixSocketMetricsTest(unittest.TestCase):
    def test_metrics_on_a_unix_socket(self):
        work = tempfile.mkdtemp(prefix="wsgd-m-")
        path = os.path.join(work, "metrics.sock")
        daemon = Daemon({"metrics": {"listen": "unix:" + path}}).start()
        try:
            self.assertEqual(metrics_address(daemon), "unix:" + path)
            status, body = unix_get(path)
            self.assertEqual(status, 200)
            self.assertIn('wsgate_sessions_active{state="open"} 0', body)
            self.assertEqual(unix_get(path, "/other")[0], 404)
        finally:
            self.assertEqual(daemon.stop(), 0, daemon.log_tail())
            daemon.remove_files()
        self.assertFalse(os.path.exists(path), "the metrics socket was not removed")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
