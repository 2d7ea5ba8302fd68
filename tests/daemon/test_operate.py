"""Operating wsgated: server reflection v1 and v1alpha (a Python reflection client built from the
protos Debian's grpc-proto ships, no wsgate proto files), grpc.health.v1 described by
reflection and answered per service (NOT_SERVING while draining), redaction of URLs in Admin and
the log, structured JSON log fields, the log level re-read on SIGHUP, and configuration errors
(all of them in one run; exit status 2 for a bad flag)."""
import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from daemon_fixture import (WSGATED, Daemon, DaemonTestCase, EchoServerTestCase, admin_pb2,
                            wait_for)

GRPC_PROTO = "/usr/share/grpc-proto"
PROTOC = shutil.which("protoc")
HAVE_PROTOS = bool(PROTOC and
                   os.path.exists(os.path.join(GRPC_PROTO, "grpc/reflection/v1/reflection.proto")))
STD_PROTOS = ["grpc/reflection/v1/reflection.proto", "grpc/reflection/v1alpha/reflection.proto",
              "grpc/health/v1/health.proto"]


def compile_std_protos(out):
    """Python messages of the reflection and health protos, generated into `out` under the
    package wsgdstd (their own package path, grpc/..., would collide with grpcio's `grpc`).
    Returns a function that imports one: std("grpc.health.v1.health_pb2")."""
    src = os.path.join(out, "src")
    shutil.copytree(os.path.join(GRPC_PROTO, "grpc"), os.path.join(src, "wsgdstd", "grpc"))
    subprocess.run([PROTOC, "-I", src, "--python_out=" + out] + ["wsgdstd/" + p for p in STD_PROTOS],
                   check=True, timeout=60)
    if out not in sys.path:
        sys.path.insert(0, out)
    return lambda name: importlib.import_module("wsgdstd." + name)


@unittest.skipUnless(HAVE_PROTOS, "protoc or grpc-proto is missing")
class ReflectionTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stubs = tempfile.mkdtemp(prefix="wsgd-refl-")
        std = compile_std_protos(cls.stubs)
        cls.v1 = std("grpc.reflection.v1.reflection_pb2")
        cls.v1alpha = std("grpc.reflection.v1alpha.reflection_pb2")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.stubs, ignore_errors=True)
        super().tearDownClass()

    def ask(self, version, **request):
        pb = self.v1 if version == "v1" else self.v1alpha
        call = self.daemon.channel.stream_stream(
            "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
            request_serializer=pb.ServerReflectionRequest.SerializeToString,
            response_deserializer=pb.ServerReflectionResponse.FromString)
        responses = list(call(iter([pb.ServerReflectionRequest(**request)]), timeout=10))
        self.assertEqual(len(responses), 1)
        return responses[0]

    def test_v1_lists_every_service(self):
        r = self.ask("v1", list_services="")
        names = {s.name for s in r.list_services_response.service}
        self.assertTrue({"wsgate.v1.Gateway", "wsgate.v1.ProtocolComponent", "wsgate.v1.Admin",
                         "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                         "grpc.reflection.v1alpha.ServerReflection"} <= names, names)

    def files_for(self, version, symbol):
        r = self.ask(version, file_containing_symbol=symbol)
        self.assertFalse(r.HasField("error_response"), r.error_response)
        files = []
        for blob in r.file_descriptor_response.file_descriptor_proto:
            f = descriptor_pb2.FileDescriptorProto()
            f.ParseFromString(blob)
            files.append(f)
        return files

    def test_health_is_described_on_both_versions(self):
        for version in ("v1", "v1alpha"):
            with self.subTest(version=version):
                files = self.files_for(version, "grpc.health.v1.Health")
                services = {s.name: [m.name for m in s.method] for f in files for s in f.service}
                self.assertIn("Health", services)
                self.assertIn("Check", services["Health"])

    def test_health_check_with_descriptors_from_reflection_only(self):
        # What grpcurl does without -proto: build the messages from reflection's answer.
        pool = descriptor_pool.DescriptorPool()
        files = self.files_for("v1", "grpc.health.v1.Health")
        for f in reversed(files):  # dependencies last in the answer, first in the pool
            pool.Add(f)
        factory = message_factory.MessageFactory(pool)
        request_type = factory.GetPrototype(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest"))
        response_type = factory.GetPrototype(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse"))
        check = self.daemon.channel.unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString)
        for service in ("", "wsgate.v1.Gateway", "wsgate.v1.Admin", "wsgate.v1.ProtocolComponent"):
            with self.subTest(service=service):
                self.assertEqual(check(request_type(service=service), timeout=5).status, 1)  # SERVING
        with self.assertRaises(grpc.RpcError) as e:
            check(request_type(service="no.such.Service"), timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_wsgate_services_are_described_on_v1(self):
        files = self.files_for("v1", "wsgate.v1.Gateway")
        self.assertIn("wsgate/v1/gateway.proto", [f.name for f in files])
        self.assertIn("wsgate/v1/common.proto", [f.name for f in files])  # its imports too

    def test_v1_unknown_symbol_is_not_found(self):
        r = self.ask("v1", file_containing_symbol="no.such.Symbol")
        self.assertEqual(r.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
        r = self.ask("v1", file_by_filename="wsgate/v1/admin.proto")
        self.assertFalse(r.HasField("error_response"))
        self.assertGreaterEqual(len(r.file_descriptor_response.file_descriptor_proto), 1)


@unittest.skipUnless(HAVE_PROTOS, "protoc or grpc-proto is missing")
class PerServiceHealthTest(unittest.TestCase):
    def test_each_service_goes_not_serving_on_drain(self):
        stubs = tempfile.mkdtemp(prefix="wsgd-health-")
        health_pb2 = compile_std_protos(stubs)("grpc.health.v1.health_pb2")
        daemon = Daemon().start()
        try:
            watch_call = daemon.channel.unary_stream(
                "/grpc.health.v1.Health/Watch",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString)
            watch = watch_call(health_pb2.HealthCheckRequest(service="wsgate.v1.Gateway"), timeout=30)
            first = next(watch)
            self.assertEqual(first.status, health_pb2.HealthCheckResponse.SERVING)
            daemon.signal(signal.SIGTERM)
            second = next(watch)  # the update sent when the drain starts
            self.assertEqual(second.status, health_pb2.HealthCheckResponse.NOT_SERVING)
            self.assertEqual(daemon.wait(20), 0)
        finally:
            daemon.kill()
            daemon.remove_files()
            shutil.rmtree(stubs, ignore_errors=True)


class RedactionTest(EchoServerTestCase):
    CONFIG = {"log": {"format": "json"}}

    def test_query_values_are_masked_in_admin_and_log(self):
        url = self.server.url + "/feed?token=SECRET123&room=7"
        s, _ = self.open_session(url)
        sessions = self.daemon.admin().ListSessions(admin_pb2.ListSessionsRequest(), timeout=5).sessions
        urls = [x.url for x in sessions]
        self.assertIn(self.server.url + "/feed?token=***&room=***", urls)
        s.send_close(1000)
        s.recv_kind("closed")
        wait_for(lambda: "/feed?token=***" in self.daemon.log_text(), 10, what="the open line")
        self.assertNotIn("SECRET123", self.daemon.log_text())


class SessionLogTest(EchoServerTestCase):
    """One JSON line per session open and close, with the fields docs/operations.md lists."""
    CONFIG = {"log": {"format": "json"}}

    def session_events(self):
        import json
        return [e for e in map(json.loads, self.daemon.log_text().splitlines())
                if e.get("event") in ("open", "close", "failed")]

    def test_open_and_close_lines_carry_the_session_fields(self):
        s, opened = self.open_session(self.server.url + "/log?key=SECRET")
        s.send_text("hello")
        self.assertEqual(s.recv_kind("message").data, b"hello")
        s.send_close(1000)
        s.recv_kind("closed")
        mine = lambda: [e for e in self.session_events() if e.get("session") == opened.session_id]
        events = wait_for(lambda: len(mine()) == 2 and mine(), 10, what="the open and close lines")
        open_, close = events
        self.assertEqual((open_["event"], open_["url"]), ("open", self.server.url + "/log?key=***"))
        self.assertEqual((close["event"], close["code"], close["initiator"]), ("close", 1000, "client"))
        self.assertEqual((close["bytes_out"], close["bytes_in"]), (5, 5))
        self.assertEqual((close["messages_out"], close["messages_in"]), (1, 1))
        self.assertIsInstance(close["duration_ms"], int)
        self.assertNotIn("SECRET", self.daemon.log_text())

    def test_a_failed_open_is_one_failed_line_with_its_cause(self):
        s = self.session()
        s.send_open("ws://127.0.0.1:1/")
        s.recv_kind("error")
        failed = wait_for(lambda: [e for e in self.session_events() if e["event"] == "failed"], 10,
                          what="the failed line")
        self.assertEqual((failed[-1]["cause"], failed[-1]["level"]),
                         ("connection_refused", "warn"))


class RedactionOffTest(EchoServerTestCase):
    CONFIG = {"log": {"redact": False}}

    def test_urls_are_kept_when_redaction_is_off(self):
        url = self.server.url + "/feed?token=VISIBLE"
        s, _ = self.open_session(url)
        sessions = self.daemon.admin().ListSessions(admin_pb2.ListSessionsRequest(), timeout=5).sessions
        self.assertIn(url, [x.url for x in sessions])
        self.assertIn("log.redact is false", self.daemon.log_text())
        s.send_close(1000)
        s.recv_kind("closed")


class LogLevelReloadTest(unittest.TestCase):
    def test_sighup_applies_the_files_level(self):
        import json
        daemon = Daemon({"log": {"format": "json"}, "metrics": {"listen": "127.0.0.1:0"}}).start()
        try:
            found = wait_for(lambda: re.search(r'"address":"(http://[^"]+)"', daemon.log_text()), 10,
                             what="the metrics address field")
            url = found.group(1)
            import urllib.request

            def scrape_and_count_debug():
                with urllib.request.urlopen(url, timeout=10) as r:
                    r.read()
                return daemon.log_text().count('"msg":"metrics request"')

            self.assertEqual(scrape_and_count_debug(), 0)  # info: no debug line
            with open(daemon.config_path) as f:
                text = f.read()
            with open(daemon.config_path, "w") as f:
                f.write(text.replace('level = "info"', 'level = "debug"'))
            daemon.signal(signal.SIGHUP)
            wait_for(lambda: "log level debug" in daemon.log_text(), 10, what="the reload line")
            wait_for(lambda: scrape_and_count_debug() >= 1, 10, what="a debug line after SIGHUP")
            line = [l for l in daemon.log_text().splitlines() if '"msg":"metrics request"' in l][0]
            event = json.loads(line)
            self.assertEqual((event["level"], event["component"], event["method"], event["path"],
                              event["status"]), ("debug", "daemon", "GET", "/metrics", 200))
        finally:
            self.assertEqual(daemon.stop(), 0, daemon.log_tail())
            daemon.remove_files()


class LogLevelFlagTest(unittest.TestCase):
    def test_sighup_keeps_the_log_level_flag(self):
        work = tempfile.mkdtemp(prefix="wsgd-flag-")
        config = os.path.join(work, "wsgated.toml")
        sock = os.path.join(work, "gw.sock")
        log_path = os.path.join(work, "log")
        with open(config, "w") as f:
            f.write('[log]\nlevel = "debug"\n')
        log = open(log_path, "wb")
        proc = subprocess.Popen([WSGATED, "--config", config, "--socket", sock, "--log-level", "info"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def text():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        try:
            wait_for(lambda: "wsgated listening" in text(), 15, what="start-up")
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "SIGHUP: logs reopened" in text(), 10, what="the reload line")
            self.assertIn("log level info", text())  # the flag, not the file's debug
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=20), 0, text())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=20)
            log.close()
            shutil.rmtree(work, ignore_errors=True)


class DebugComponentsTest(DaemonTestCase):
    CONFIG = {"log": {"format": "json", "level": "debug"}}

    def events(self, component):
        import json
        out = []
        for line in self.daemon.log_text().splitlines():
            event = json.loads(line)
            if event["component"] == component:
                out.append(event)
        return out

    def test_protocol_and_rpc_decisions_are_logged_with_fields(self):
        from daemon_fixture import protocol_component_pb2
        pc = self.daemon.protocol_component()
        handle = pc.CreateClientHandle(protocol_component_pb2.CreateHandleRequest(), timeout=5).handle
        pc.DeleteHandle(protocol_component_pb2.HandleRequest(handle=handle), timeout=5)
        self.daemon.admin().GetStats(admin_pb2.GetStatsRequest(), timeout=5)
        protocol = wait_for(lambda: [e for e in self.events("protocol") if e.get("event") == "delete_handle"]
                            and self.events("protocol"), 10, what="protocol events")
        created = [e for e in protocol if e.get("event") == "create_handle"]
        self.assertEqual((created[0]["level"], created[0]["role"], created[0]["verdict"]),
                         ("debug", "client", "created"))
        rpc = wait_for(lambda: [e for e in self.events("rpc") if e.get("msg") == "admin call"], 10,
                       what="the admin call event")
        self.assertEqual((rpc[0]["method"], rpc[0]["verdict"]), ("GetStats", "allowed"))


class ConfigErrorsTest(unittest.TestCase):
    def run_wsgated(self, *args, config=None):
        work = tempfile.mkdtemp(prefix="wsgd-cfg-")
        try:
            argv = [WSGATED] + list(args)
            if config is not None:
                path = os.path.join(work, "bad.toml")
                with open(path, "w") as f:
                    f.write(config)
                argv += ["--config", path, "--check-config"]
            r = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
            return r.returncode, r.stderr.decode()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_every_error_in_one_run(self):
        code, err = self.run_wsgated(config=(
            "io_thread = 2\n"
            "[log]\nlevel = \"loud\"\nformt = \"json\"\n"
            "[timeouts]\nconnect_ms = -1\n"
            "[limits]\nmax_sessions = \"many\"\n"
            "[metrics]\nlisten = \"localhost:9464\"\n"))
        self.assertEqual(code, 2, err)
        lines = [l for l in err.splitlines() if l.strip()]
        for needle in ("io_thread: unknown key or table; did you mean io_threads?",
                       "log.level: unknown log level", "log.formt: unknown key; did you mean format?",
                       "timeouts.connect_ms:", "limits.max_sessions: expected",
                       "metrics.listen:"):
            self.assertTrue(any(needle in l for l in lines), "%r not in:\n%s" % (needle, err))
        self.assertTrue(all("(line " in l for l in lines[1:] + [lines[0]]), err)

    def test_an_unknown_flag_exits_2(self):
        code, err = self.run_wsgated("--bogus")
        self.assertEqual(code, 2, err)
        self.assertIn("--bogus", err)

    def test_help_exits_0(self):
        self.assertEqual(self.run_wsgated("--help")[0], 0)


if __name__ == "__main__":
    unittest.main()
