"""One name per setting (docs/configuration.md, "Environment").

EnvironmentNamesTest reads the repository: every WSGATE_* name it uses as an environment variable,
a CMake option or a websocket.h macro is in the documented table, and every name of the table is
used somewhere. DaemonAddressTest runs wsgated: it listens where WSGATE_ADDRESS (the clients'
variable) says, refuses a TCP target there, and WSGATE_SOCKET is a deprecated alias.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import unittest

from daemon_fixture import START_TIMEOUT, STOP_TIMEOUT, WSGATED, grpc, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join("docs", "configuration.md")
SELF = os.path.relpath(os.path.abspath(__file__), REPO)  # names examples of what must not match
HISTORY = "CHANGELOG.md"  # records names that are gone
NAME = r"WSGATE_[A-Z0-9_]*[A-Z0-9]"
C_LIKE = (".c", ".cc", ".h", ".cpp", ".hpp")
# Not the project's sources: build trees, dependencies, generated or packed copies.
SKIP_DIRS = ("build", ".git", "node_modules", "__pycache__")


def repository_files():
    for top, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(SKIP_DIRS) and not d.endswith(".egg-info")
                   and os.path.relpath(os.path.join(top, d), REPO) != "client-sdk/node/proto"]
        for f in files:
            yield os.path.relpath(os.path.join(top, f), REPO)


def names_in(path, text):
    """The WSGATE_* settings a file uses. In C and C++ only string literals count (getenv,
    envname, setenv: macros and include guards are identifiers, not settings); in CMake only
    $ENV{X}, option(X and "X=.../;X=... in test ENVIRONMENT strings (other names are CMake
    variables); in configure_file templates (*.in) every name but @X@; everywhere else every occurrence (scripts, docs, units, manifests)."""
    base = os.path.basename(path)
    if path.endswith(C_LIKE):
        # websocket.h's documented macro is a setting of the code that includes it.
        return set(re.findall(r'"(%s)"' % NAME, text)) | (
            {"WSGATE_HRESULT_WINERROR"} if "#ifdef WSGATE_HRESULT_WINERROR" in text else set())
    if base.endswith(".in") and base != "CMakeLists.txt":
        # configure_file templates (systemd units): @NAME@ is a CMake variable, the rest counts.
        return set(re.findall(r"\b(%s)\b" % NAME, text)) - set(re.findall(r"@(%s)@" % NAME, text))
    if base == "CMakeLists.txt" or base.endswith(".cmake"):
        return set(re.findall(r"\$ENV\{(%s)\}" % NAME, text)
                   + re.findall(r"\boption\((%s)\b" % NAME, text)
                   + re.findall(r'[";](%s)=' % NAME, text))
    return set(re.findall(r"\b(%s)\b" % NAME, text))


def used_names():
    """{name: [files]} over the repository; the table itself, this file and the changelog are
    left out."""
    found = {}
    for path in repository_files():
        if path in (DOC, SELF, HISTORY):
            continue
        try:
            with open(os.path.join(REPO, path), encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue  # binary (fuzz corpus, images)
        for name in names_in(path, text):
            found.setdefault(name, []).append(path)
    return found


def documented_names():
    with open(os.path.join(REPO, DOC), encoding="utf-8") as f:
        doc = f.read()
    section = re.search(r"^## Environment\n(.*?)^## ", doc, re.S | re.M)
    assert section, "no '## Environment' section in " + DOC
    names = set()
    for row in re.findall(r"^\|([^|\n]*)\|", section.group(1), re.M):
        names |= set(re.findall(r"`(%s)`" % NAME, row))
    return names


class EnvironmentNamesTest(unittest.TestCase):
    def test_every_used_name_is_documented(self):
        used = used_names()
        undocumented = {n: files for n, files in used.items() if n not in documented_names()}
        self.assertEqual(undocumented, {},
                         "WSGATE_* names used but not in the table of %s (add them there, or "
                         "use a documented name):" % DOC)

    def test_every_documented_name_is_used(self):
        self.assertEqual(documented_names() - set(used_names()), set(),
                         "names in the table of %s that nothing uses" % DOC)

    def test_the_scanner_sees_each_kind_of_use(self):
        used = used_names()
        # A string in C++ (the daemon's getenv), a Dockerfile ENV, a Kubernetes env entry, a
        # systemd Environment=, a CMake option and a ctest ENVIRONMENT string.
        self.assertIn("service/daemon/main.cc", used["WSGATE_ADDRESS"])
        self.assertIn("Dockerfile", used["WSGATE_ADDRESS"])
        self.assertIn("deploy/kubernetes/wsgated-sidecar.yaml", used["WSGATE_ADDRESS"])
        self.assertIn("deploy/systemd/wsgated.service.in", used["WSGATE_ADDRESS"])
        self.assertIn("CMakeLists.txt", used["WSGATE_BUILD_TESTS"])
        self.assertIn("tests/cli/CMakeLists.txt", used["WSGATE_CLI"])
        # Include guards and CMake variables are not settings.
        self.assertFalse([n for n in used if n.endswith("_H")], used.keys())
        self.assertNotIn("WSGATE_PROTO_PYTHON_DIR", used)
        # The name nothing ever read is gone.
        self.assertNotIn("WSGATE_TARGET", used)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSGATE_")}
    env.update(extra)
    return env


class DaemonAddressTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgd-env-")
        self.addCleanup(self.tmp.cleanup)
        self.logs = []

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def start(self, env, args=()):
        self.logs.append(self.path("wsgated-%d.log" % len(self.logs)))
        log = open(self.logs[-1], "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([WSGATED, *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        return proc

    def log(self):
        """The logs of every daemon the test started."""
        text = ""
        for path in self.logs:
            with open(path, "rb") as f:
                text += f.read().decode(errors="replace")
        return text

    def assert_serves(self, proc, path):
        def accepts():
            if proc.poll() is not None:
                raise AssertionError("wsgated exited with %s:\n%s" % (proc.returncode, self.log()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_for(accepts, START_TIMEOUT, what="wsgated's socket at " + path)
        channel = grpc.insecure_channel("unix:" + path)
        try:
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
        finally:
            channel.close()

    def test_listens_at_wsgate_address(self):
        # The forms the clients accept for a unix socket: unix:PATH, unix:///ABS, a bare /ABS.
        for i, form in enumerate(("unix:%s", "unix://%s", "%s")):
            with self.subTest(form=form):
                path = self.path("gw%d.sock" % i)
                # Stopped by the cleanup: a SIGTERM this early may precede the daemon's signal
                # handling (READY=1 marks that; without a notify socket nothing does).
                self.assert_serves(self.start(clean_env(WSGATE_ADDRESS=form % path)), path)
        self.assertNotIn("deprecated", self.log())

    def test_socket_flag_wins(self):
        flag = self.path("flag.sock")
        proc = self.start(clean_env(WSGATE_ADDRESS="unix:" + self.path("env.sock")),
                          ["--socket", flag])
        self.assert_serves(proc, flag)
        self.assertFalse(os.path.exists(self.path("env.sock")))

    def test_targets_the_daemon_cannot_listen_on(self):
        for value, expected in (("127.0.0.1:9000", "for a TCP listener set WSGATE_TCP"),
                                ("dns:///example.com:443", "for a TCP listener set WSGATE_TCP"),
                                ("unix:", "no socket path"),
                                ("unix://relative.sock", "no socket path")):
            with self.subTest(value=value):
                r = subprocess.run([WSGATED, "--check-config"],
                                   env=clean_env(WSGATE_ADDRESS=value), capture_output=True,
                                   text=True, timeout=STOP_TIMEOUT)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn('wsgated: WSGATE_ADDRESS: "%s": ' % value, r.stderr)
                self.assertIn(expected, r.stderr)

    def test_deprecated_alias(self):
        legacy = self.path("legacy.sock")
        r = subprocess.run([WSGATED, "--check-config"], env=clean_env(WSGATE_SOCKET=legacy),
                           capture_output=True, text=True, timeout=STOP_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("wsgated: warning: WSGATE_SOCKET is deprecated: set "
                      "WSGATE_ADDRESS=unix:" + legacy, r.stderr)
        proc = self.start(clean_env(WSGATE_SOCKET=legacy))
        self.assert_serves(proc, legacy)
        self.assertIn("WSGATE_SOCKET is deprecated", self.log())

        # Both set: WSGATE_ADDRESS wins, the old name is reported as ignored.
        r = subprocess.run([WSGATED, "--check-config"],
                           env=clean_env(WSGATE_SOCKET=legacy,
                                         WSGATE_ADDRESS="unix:" + self.path("new.sock")),
                           capture_output=True, text=True, timeout=STOP_TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("WSGATE_SOCKET is deprecated and ignored: WSGATE_ADDRESS is set", r.stderr)


if __name__ == "__main__":
    unittest.main()
