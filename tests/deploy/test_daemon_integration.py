"""The real wsgated under a fake service manager, and the wsgate-health probe against it.

- NOTIFY_SOCKET: a unix datagram socket made here. READY=1 must come once the gRPC socket
  accepts connections, STOPPING=1 after SIGTERM; WATCHDOG=1 every WATCHDOG_USEC/2 when set.
- LISTEN_FDS: a listening unix socket passed as fd 3 (what systemd does for wsgated.socket);
  wsgated serves on it, leaves its path alone, and refuses a socket that is not unix/stream.
- wsgate-health: exit 0 and SERVING against a running daemon (unix socket and TCP), 1 when
  nothing listens."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from deploy_util import WSGATE_HEALTH, WSGATED  # noqa: E402


def connectable(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """wsgated in a temp dir, optionally with a notify socket and extra environment."""

    def __init__(self, tmp, notify=True, env=None, args=(), pass_fds=(), prefix=()):
        self.tmp = pathlib.Path(tmp)
        self.sock = self.tmp / "wsgated.sock"
        self.notify = None
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("NOTIFY_", "WATCHDOG_", "LISTEN_", "WSGATE_"))}
        if notify:
            self.notify_path = self.tmp / "notify.sock"
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(str(self.notify_path))
            e["NOTIFY_SOCKET"] = str(self.notify_path)
        e.update(env or {})
        self.log = open(self.tmp / "wsgated.log", "w+")
        cmd = [*prefix, str(WSGATED), "--socket", str(self.sock), *args]
        self.proc = subprocess.Popen(cmd, env=e, stdout=self.log, stderr=subprocess.STDOUT,
                                     pass_fds=pass_fds)

    def messages(self, timeout):
        """Every notify datagram received within `timeout` seconds, split into lines."""
        out = []
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            self.notify.settimeout(left)
            try:
                data = self.notify.recv(4096)
            except socket.timeout:
                break
            out.extend(data.decode().splitlines())
        return out

    def wait_for(self, line, timeout=10.0):
        seen = []
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            self.notify.settimeout(left)
            try:
                data = self.notify.recv(4096).decode()
            except socket.timeout:
                break
            seen.extend(data.splitlines())
            if line in data.splitlines():
                return seen
        raise AssertionError(f"no {line!r} within {timeout}s; got {seen}; log:\n{self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return (self.tmp / "wsgated.log").read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        self.log.close()
        if self.notify:
            self.notify.close()
        return rc


class DaemonTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wsgate-deploy-")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        subprocess.run(["rm", "-rf", self.tmp])

    def start(self, **kw):
        d = Daemon(self.tmp, **kw)
        self.daemons.append(d)
        return d

    def health(self, target, timeout_ms=3000):
        return subprocess.run([str(WSGATE_HEALTH), target, "--timeout-ms", str(timeout_ms)],
                              capture_output=True, text=True, timeout=30)


class SdNotify(DaemonTestCase):
    def test_ready_after_listening_then_stopping_on_sigterm(self):
        d = self.start()
        seen = d.wait_for("READY=1")
        # READY=1 is sent after the listener is up: the socket accepts connections now.
        self.assertTrue(connectable(d.sock), d.output())
        self.assertTrue(any(m.startswith("STATUS=listening on unix:") for m in seen), seen)
        self.assertNotIn("WATCHDOG=1", seen)  # no WATCHDOG_USEC, no pings
        d.proc.send_signal(signal.SIGTERM)
        d.wait_for("STOPPING=1")
        self.assertEqual(d.stop(), 0)

    def test_watchdog_every_half_interval(self):
        d = self.start(env={"WATCHDOG_USEC": "400000"})  # 0.4 s: a ping every 0.2 s
        d.wait_for("READY=1")
        msgs = d.messages(1.2)
        pings = msgs.count("WATCHDOG=1")
        self.assertGreaterEqual(pings, 3, msgs)  # ~6 expected; slack for loaded CI
        self.assertLessEqual(pings, 9, msgs)
        self.assertEqual(d.stop(), 0)

    def test_watchdog_for_another_pid_is_ignored(self):
        d = self.start(env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        d.wait_for("READY=1")
        self.assertNotIn("WATCHDOG=1", d.messages(0.6))
        self.assertEqual(d.stop(), 0)

    def test_without_notify_socket_nothing_changes(self):
        d = self.start(notify=False)
        end = time.monotonic() + 10
        while not connectable(d.sock) and time.monotonic() < end:
            time.sleep(0.05)
        self.assertTrue(connectable(d.sock), d.output())
        self.assertEqual(d.stop(), 0)
        self.assertFalse(d.sock.exists())  # our own socket: removed at exit


class HealthProbe(DaemonTestCase):
    def test_serving_on_unix_and_tcp(self):
        port = free_tcp_port()
        d = self.start(args=["--tcp", f"127.0.0.1:{port}"])
        d.wait_for("READY=1")
        r = self.health(str(d.sock))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SERVING", r.stdout)
        r = self.health(f"127.0.0.1:{port}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([str(WSGATE_HEALTH)], capture_output=True, text=True, timeout=30,
                           env={**os.environ, "WSGATE_ADDRESS": f"unix:{d.sock}"})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(d.stop(), 0)

    def test_nothing_listening(self):
        r = self.health(str(pathlib.Path(self.tmp) / "absent.sock"), timeout_ms=1000)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_bad_usage(self):
        r = subprocess.run([str(WSGATE_HEALTH), "--timeout-ms", "x"], capture_output=True)
        self.assertEqual(r.returncode, 2)


class SocketActivation(DaemonTestCase):
    def inherit(self, listener, **kw):
        """Starts wsgated with `listener` as fd 3 and LISTEN_PID=its pid, as systemd does."""
        fd = listener.fileno()
        shell = f'exec 3<&{fd} {fd}<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
        return self.start(env={"LISTEN_FDNAMES": "wsgated.socket"}, pass_fds=(fd,),
                          prefix=("/bin/sh", "-c", shell, "sh"), **kw)

    def test_serves_on_the_inherited_socket(self):
        path = pathlib.Path(self.tmp) / "activated.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(16)
        self.addCleanup(listener.close)
        os.chmod(path, 0o660)
        d = self.inherit(listener)
        seen = d.wait_for("READY=1")
        self.assertIn(f"STATUS=listening on unix:{path}", seen)
        for _ in range(3):  # several connections, each adopted by gRPC
            r = self.health(str(path))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.output())
        self.assertFalse(d.sock.exists(), "--socket must not be bound when a socket is inherited")
        self.assertEqual(d.stop(), 0, d.output())
        # The path and the listening socket are the service manager's: still there.
        self.assertTrue(path.exists())
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o660)

    @unittest.skipUnless(shutil.which("systemd-socket-activate"), "systemd-socket-activate missing")
    def test_systemd_socket_activate(self):
        """systemd's own fd passing: the daemon starts on the first connection."""
        path = pathlib.Path(self.tmp) / "ssa.sock"
        # -E: it passes on only the variables it is told to.
        d = self.start(prefix=("systemd-socket-activate", "-E", "NOTIFY_SOCKET", "-l", str(path)))
        end = time.monotonic() + 10
        while not path.exists() and time.monotonic() < end:
            time.sleep(0.05)
        for _ in range(2):
            r = self.health(str(path))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.output())
        self.assertIn("READY=1", d.wait_for("READY=1"))
        self.assertEqual(d.stop(), 0, d.output())
        self.assertIn(f"listening on unix:{path}", d.output())

    def test_refuses_a_tcp_socket(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        d = self.inherit(listener, notify=False)
        rc = d.proc.wait(timeout=20)
        out = d.output()
        d.stop()
        listener.close()
        self.assertEqual(rc, 1, out)
        self.assertIn("not a listening unix stream socket", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
