"""The Windows syntax check itself (check_mingw_syntax.py): a source that includes a Linux-only
header must fail there, named, even though Debian has that header in /usr/include (the check
shows the libraries' header directories only); a library header the daemon uses must work; an
excluded file is skipped. Runs the real mingw-w64 compiler on a small temporary tree."""
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).parent
COMPILER = os.environ["MINGW_CXX"]


def run_check(tree, *extra):
    return subprocess.run(
        [sys.executable, str(HERE / "check_mingw_syntax.py"), "--compiler", COMPILER,
         "--source-dir", str(tree), *extra],
        capture_output=True, text=True, timeout=600)


class CheckMingwSyntax(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wsgate-mingw-selftest-")
        self.tree = pathlib.Path(self.tmp.name)
        (self.tree / "service").mkdir()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rel, text):
        path = self.tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def test_linux_header_fails_with_the_file_named(self):
        self.write("service/posixy.cc", "#include <sys/socket.h>\nint f() { return AF_UNIX; }\n")
        self.write("service/portable.cc",
                   "#include <asio/detail/socket_types.hpp>\nint g() { return AF_INET; }\n")
        out = run_check(self.tree)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("FAIL service/posixy.cc", out.stdout)
        self.assertIn("sys/socket.h", out.stdout)
        self.assertNotIn("FAIL service/portable.cc", out.stdout)
        self.assertIn("1 of 2 sources compile for Windows", out.stdout)

    def test_excluded_file_is_skipped(self):
        self.write("service/posixy.cc", "#include <unistd.h>\nint f() { return getpid(); }\n")
        self.write("service/portable.cc", "int g() { return 1; }\n")
        out = run_check(self.tree, "--exclude", "service/posixy.cc")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("1 of 1 sources compile for Windows", out.stdout)

    def test_warnings_are_errors(self):
        self.write("service/narrowing.cc", "int f(long long v) { return v; }\n")  # -Wconversion
        out = run_check(self.tree)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("FAIL service/narrowing.cc", out.stdout)

    def test_missing_excluded_file_is_an_error(self):
        out = run_check(self.tree, "--exclude", "service/gone.cc")
        self.assertEqual(out.returncode, 2)
        self.assertIn("service/gone.cc", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
