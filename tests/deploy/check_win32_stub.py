"""The stub of Server used by the mingw-w64 syntax check (win32_stub/service/daemon/server.h)
must declare the same public members as the real service/daemon/server.h, and the Windows
sources may only use Server members the stub declares, so the check cannot drift into testing
an interface that no longer exists."""
import pathlib
import re
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from deploy_util import SOURCE  # noqa: E402


def public_members(header):
    text = re.sub(r"//[^\n]*", "", header.read_text())
    body = re.search(r"class Server \{(.*?)\n\};", text, re.S).group(1)
    public = re.search(r"public:(.*?)(?:private:|protected:|$)", body, re.S).group(1)
    decls = set()
    for d in public.split(";"):
        d = " ".join(d.split())
        d = re.sub(r"\s*\{.*", "", d)  # inline bodies
        if "(" in d:
            decls.add(d)
    return decls


class Win32Stub(unittest.TestCase):
    def test_same_public_interface(self):
        real = public_members(SOURCE / "service/daemon/server.h")
        stub = public_members(pathlib.Path(__file__).parent / "win32_stub/service/daemon/server.h")
        self.assertEqual(real, stub)

    def test_logging_stub_declares_the_real_functions(self):
        real = (SOURCE / "service/log/logging.h").read_text()
        stub = (pathlib.Path(__file__).parent / "win32_stub/service/log/logging.h").read_text()
        for fn in ("init_logging(const LogConfig& config)", "reopen_logs()",
                   "logger(std::string_view component)", "set_log_level(std::string_view level)"):
            self.assertIn(fn, real)
            self.assertIn(fn, stub)


if __name__ == "__main__":
    unittest.main(verbosity=2)
