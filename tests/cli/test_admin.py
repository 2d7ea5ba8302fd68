"""`wsgate sessions`, `stats`, `health`, `version` against a daemon with open sessions, the
address rules (--address, WSGATE_ADDRESS), and usage errors (exit 2)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from cli_fixture import CatProcess, cli_env, run_cli
from daemon_fixture import REPO, DaemonTestCase, EchoServerTestCase


class AdminTest(EchoServerTestCase):
    def open_cat(self, tag):
        """A `wsgate cat` session that has exchanged one message (so it is open)."""
        url = self.server.unique_url(tag)
        p = CatProcess([url], self.daemon)
        self.addCleanup(p.kill)
        p.write("hi there\n")
        self.assertEqual(p.read_record(), b"hi there")
        return p, url

    def test_sessions_table_and_json_list_open_sessions(self):
        p1, url1 = self.open_cat("list-a")
        p2, url2 = self.open_cat("list-b")
        code, out, err = run_cli(["sessions"], self.daemon)
        self.assertEqual(code, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0].split()[:3], ["ID", "STATE", "AGE"])
        rows = {line.split()[-1]: line.split() for line in lines[1:]}
        for url in (url1, url2):
            self.assertIn(url, rows)
            self.assertEqual(rows[url][1], "open")
            # MSGS OUT, BYTES OUT, MSGS IN, BYTES IN: "hi there" once each way.
            self.assertEqual(rows[url][3:7], ["1", "8", "1", "8"])

        code, out, err = run_cli(["sessions", "--json"], self.daemon)
        self.assertEqual(code, 0, err)
        sessions = {s["url"]: s for s in json.loads(out)["sessions"]}
        self.assertEqual(sessions[url1]["state"], "SESSION_STATE_OPEN")
        self.assertEqual(sessions[url2]["messages_received"], "1")

        self.assertEqual(p1.finish()[0], 0)
        code, out, _ = run_cli(["sessions", "--json"], self.daemon)
        urls = [s["url"] for s in json.loads(out)["sessions"]]
        self.assertNotIn(url1, urls)
        self.assertIn(url2, urls)

    def test_stats_count_sessions_and_failures(self):
        p, _ = self.open_cat("stats")
        code, _, _ = run_cli(["cat", "ws://127.0.0.1:1/"], self.daemon)
        self.assertEqual(code, 5)
        code, out, err = run_cli(["stats", "--json"], self.daemon)
        self.assertEqual(code, 0, err)
        stats = json.loads(out)
        self.assertGreaterEqual(int(stats["active_sessions"]), 1)
        self.assertGreaterEqual(int(stats["opens_total"]), 2)
        self.assertGreaterEqual(int(stats["failures_by_cause"]["connection_refused"]), 1)
        code, out, err = run_cli(["stats"], self.daemon)
        self.assertEqual(code, 0, err)
        table = dict(line.split() for line in out.decode().splitlines())
        self.assertGreaterEqual(int(table["active_sessions"]), 1)
        self.assertGreaterEqual(int(table["failures.connection_refused"]), 1)
        self.assertEqual(p.finish()[0], 0)

    def test_health_serving_exit_0(self):
        code, out, err = run_cli(["health"], self.daemon)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.decode(), "unix:%s: SERVING\n" % self.daemon.socket_path)

    def test_health_without_daemon_exit_1(self):
        missing = tempfile.mktemp(prefix="wsgate-none-", suffix=".sock")
        code, out, err = run_cli(["health", "--timeout-ms", "2000"], address=missing)
        self.assertEqual((code, out), (1, b""))
        self.assertTrue(err.startswith("wsgate: unix:" + missing + ": "), err)

    def test_admin_without_daemon_exit_3(self):
        missing = tempfile.mktemp(prefix="wsgate-none-", suffix=".sock")
        for command in ("sessions", "stats"):
            code, _, err = run_cli([command], address="unix:" + missing)
            self.assertEqual(code, 3, command)
            self.assertTrue(err.startswith("wsgate: cannot reach wsgated at unix:" + missing), err)

    def test_address_option_and_environment(self):
        # --address wins over WSGATE_ADDRESS; a bare path is a unix socket.
        code, out, _ = run_cli(["--address", self.daemon.socket_path, "health"],
                               address="unix:/nonexistent/x.sock")
        self.assertEqual(code, 0, out)
        code, _, _ = run_cli(["sessions", "--address", self.daemon.socket_path],
                             address="unix:/nonexistent/x.sock")
        self.assertEqual(code, 0)
        # WSGATE_ADDRESS in the daemon's form (what the container image and the systemd unit
        # set): a bare path works as well as unix:PATH.
        code, out, err = run_cli(["health"], address=self.daemon.socket_path)
        self.assertEqual(code, 0, err)
        self.assertIn("SERVING", out.decode())

    def test_version(self):
        for args in (["version"], ["--version"]):
            code, out, _ = run_cli(args)
            self.assertEqual(code, 0)
            self.assertRegex(out.decode(), r"^wsgate \d+\.\d+\.\d+\n$")


class InstallTest(DaemonTestCase):
    """`cmake --install --component daemon` and deploy/install.sh give a `wsgate` that runs (its
    RPATH finds the SDK library installed beside it)."""

    def test_daemon_component_install_runs(self):
        build = os.environ.get("WSGATE_BUILD_DIR")
        if not build:
            self.skipTest("WSGATE_BUILD_DIR not set")
        prefix = tempfile.mkdtemp(prefix="wsgate-install-")
        self.addCleanup(shutil.rmtree, prefix, True)
        subprocess.run(["cmake", "--install", build, "--component", "daemon", "--prefix", prefix],
                       check=True, capture_output=True, timeout=120)
        self.assert_runs(os.path.join(prefix, "bin", "wsgate"))

    def test_install_script_puts_wsgate_beside_wsgated(self):
        build = os.environ.get("WSGATE_BUILD_DIR")
        if not build:
            self.skipTest("WSGATE_BUILD_DIR not set")
        dest = tempfile.mkdtemp(prefix="wsgate-destdir-")
        self.addCleanup(shutil.rmtree, dest, True)
        script = os.path.join(REPO, "deploy", "install.sh")
        subprocess.run([script, "--build-dir", build, "--prefix", "/usr"], check=True,
                       capture_output=True, env={**os.environ, "DESTDIR": dest}, timeout=120)
        self.assertTrue(os.access(os.path.join(dest, "usr/bin/wsgated"), os.X_OK))
        self.assert_runs(os.path.join(dest, "usr/bin/wsgate"))

    def assert_runs(self, installed):
        env = cli_env(self.daemon)
        env.pop("LD_LIBRARY_PATH", None)
        r = subprocess.run([installed, "health"], capture_output=True, env=env, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"SERVING", r.stdout)


class UsageTest(unittest.TestCase):
    """Bad command lines: one error line, a usage line, exit 2, and no daemon needed."""

    CASES = [
        ([], "usage: wsgate "),
        (["--bogus"], "usage: wsgate "),
        (["frobnicate"], "usage: wsgate "),
        (["cat"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--bogus"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--close", "999"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--close", "1005"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--close", "abc"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--close", "1000", "x" * 124], "usage: wsgate cat "),
        (["cat", "ws://h/", "-H", "no-colon"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--binary-output", "base64"], "usage: wsgate cat "),
        (["cat", "ws://h/", "--ping-interval", "-1"], "usage: wsgate cat "),
        (["sessions", "--yaml"], "usage: wsgate sessions"),
        (["health", "--timeout-ms", "0"], "usage: wsgate health"),
        (["version", "extra"], "usage: wsgate version"),
    ]

    def test_bad_flags_exit_2_with_usage(self):
        for args, usage in self.CASES:
            with self.subTest(args=args):
                code, out, err = run_cli(args, address="unix:/nonexistent/x.sock")
                self.assertEqual(code, 2, err)
                self.assertEqual(out, b"")
                lines = err.splitlines()
                self.assertEqual(len(lines), 2, err)
                self.assertTrue(lines[0].startswith("wsgate: "), err)
                self.assertTrue(lines[1].startswith(usage), err)

    def test_error_line_names_the_bad_argument(self):
        cases = ((["--bogus"], "--bogus"), (["frobnicate"], "frobnicate"),
                 (["stats", "--bogus"], "--bogus"), (["cat", "ws://h/", "-H", "x"], "-H x"))
        for args, bad in cases:
            with self.subTest(args=args):
                code, _, err = run_cli(args, address="unix:/nonexistent/x.sock")
                self.assertEqual(code, 2)
                self.assertIn(bad, err.splitlines()[0])

    def test_help_exit_0(self):
        code, out, _ = run_cli(["cat", "--help"])
        self.assertEqual(code, 0)
        self.assertIn(b"--subprotocol", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
