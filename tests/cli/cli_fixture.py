"""Drives the real `wsgate` binary (WSGATE_CLI) against the real daemon and real servers.

The daemon, the echo servers and the test PKI are tests/daemon's (daemon_fixture.py, servers.py,
certs.py), imported from there. Every wait has a deadline.

CatProcess   `wsgate cat` with pipes: write records to its stdin, read its stdout with a
             deadline, close stdin, wait for the exit status.
Terminal     a tmux server on a private socket running one command in a pane of a fixed size:
             send_keys() types, wait_screen() polls capture-pane until a predicate holds.
"""
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "daemon"))

from daemon_fixture import wait_for  # noqa: E402

WSGATE_CLI = os.environ.get("WSGATE_CLI")
if not WSGATE_CLI or not os.access(WSGATE_CLI, os.X_OK):
    raise RuntimeError("the wsgate binary was not found: set WSGATE_CLI (got %r)" % WSGATE_CLI)

TIMEOUT = 20.0


def cli_env(daemon=None, address=None):
    env = dict(os.environ)
    env.pop("WSGATE_ADDRESS", None)
    if address is not None:
        env["WSGATE_ADDRESS"] = address
    elif daemon is not None:
        env["WSGATE_ADDRESS"] = "unix:" + daemon.socket_path
    return env


def run_cli(args, daemon=None, address=None, input=b"", timeout=TIMEOUT, extra_env=None):
    """Runs wsgate to completion; returns (exit status, stdout bytes, stderr text)."""
    env = cli_env(daemon, address)
    env.update(extra_env or {})
    r = subprocess.run([WSGATE_CLI] + list(args), input=input, capture_output=True, env=env,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


class CatProcess:
    def __init__(self, args, daemon):
        self.proc = subprocess.Popen([WSGATE_CLI, "cat"] + list(args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=cli_env(daemon))
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._out = b""

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _fill(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._selector.select(remaining):
            raise AssertionError("no %s from wsgate within the deadline (have %r, exit %s)"
                                 % (what, self._out[-200:], self.proc.poll()))
        data = os.read(self.proc.stdout.fileno(), 1 << 20)
        if not data:
            raise AssertionError("wsgate closed stdout before %s (have %r, exit %s, stderr %s)"
                                 % (what, self._out[-200:], self.proc.wait(TIMEOUT),
                                    self.proc.stderr.read().decode("utf-8", "replace")))
        self._out += data

    def read_record(self, sep=b"\n", timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while sep not in self._out:
            self._fill(deadline, "record")
        record, _, self._out = self._out.partition(sep)
        return record

    def read_exactly(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self._out) < n:
            self._fill(deadline, "%d bytes" % n)
        data, self._out = self._out[:n], self._out[n:]
        return data

    def finish(self, timeout=TIMEOUT):
        """Closes stdin (end of input) and returns (exit status, rest of stdout, stderr)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        return self.wait(timeout)

    def wait(self, timeout=TIMEOUT):
        """Reads stdout to its end and waits for the exit: (status, unread stdout, stderr)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                raise AssertionError("wsgate did not exit within %.1f s" % timeout)
            data = os.read(self.proc.stdout.fileno(), 1 << 20)
            if not data:
                break
            self._out += data
        code = self.proc.wait(max(0.1, deadline - time.monotonic()))
        err = self.proc.stderr.read().decode("utf-8", "replace")
        out, self._out = self._out, b""
        return code, out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        self._selector.close()


class Terminal:
    TMUX = shutil.which("tmux")

    def __init__(self, command, env, width=160, height=40):
        self.dir = tempfile.mkdtemp(prefix="wsgate-tmux-")
        self.socket = os.path.join(self.dir, "tmux.sock")
        # The pane's shell prints the exit status and then waits (cat reads the idle terminal)
        # so that the status stays on the screen for wait_screen().
        shell = "%s; echo EXIT=$?; exec cat" % command
        self._tmux("-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height),
                   "sh", "-c", shell, env=env)

    def _tmux(self, *args, env=None):
        return subprocess.run([self.TMUX, "-S", self.socket] + list(args), capture_output=True,
                              check=True, env=env, timeout=TIMEOUT).stdout.decode()

    def send_keys(self, *keys, literal=False):
        self._tmux("send-keys", "-t", "0", *(["-l"] if literal else []), *keys)

    def type(self, text):
        self.send_keys(text, literal=True)

    def screen(self):
        """The pane's lines without trailing spaces (capture-pane drops them: an empty prompt
        "> " reads ">"), trailing blank lines removed."""
        lines = [line.rstrip() for line in self._tmux("capture-pane", "-p", "-t", "0").split("\n")]
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def wait_screen(self, predicate, what, timeout=TIMEOUT):
        try:
            return wait_for(lambda: predicate(self.screen()), timeout, interval=0.02, what=what)
        except AssertionError as e:
            raise AssertionError("%s; the screen:\n%s" % (e, "\n".join(self.screen()))) from None

    def close(self):
        subprocess.run([self.TMUX, "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)
