"""deploy/systemd: systemd-analyze verify (offline), the security exposure score, sysusers.

verify needs every Exec*= binary to exist, so it runs on a temporary copy of the units whose
ExecStart= names the wsgated just built (the rest of the unit is unchanged). security --offline
reads the unit file as is and scores its sandboxing; the issue asks for 2.0 or lower."""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from deploy_util import UNITS, WSGATED  # noqa: E402

MAX_EXPOSURE = 2.0


def run(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


class SystemdUnits(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="wsgate-units-"))
        self.addCleanup(shutil.rmtree, self.tmp)
        for name in ("wsgated.service", "wsgated.socket"):
            text = (UNITS / name).read_text()
            (self.tmp / name).write_text(text.replace("/usr/local/bin/wsgated", str(WSGATED)))

    def test_unit_as_shipped_names_the_installed_binary(self):
        text = (UNITS / "wsgated.service").read_text()
        self.assertRegex(text, r"(?m)^ExecStart=/usr/local/bin/wsgated ")
        self.assertRegex(text, r"(?m)^Type=notify$")

    def test_verify(self):
        r = run("systemd-analyze", "verify", "--man=no",
                str(self.tmp / "wsgated.service"), str(self.tmp / "wsgated.socket"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "verify printed warnings:\n" + r.stderr)

    def test_security_exposure(self):
        r = run("systemd-analyze", "security", "--offline=true", "--no-pager",
                str(UNITS / "wsgated.service"))
        out = r.stdout + r.stderr
        m = re.search(r"Overall exposure level for wsgated\.service: ([0-9.]+)", out)
        self.assertIsNotNone(m, out)
        score = float(m.group(1))
        print(f"exposure {score}")
        self.assertLessEqual(score, MAX_EXPOSURE, out)

    def test_sysusers_entry(self):
        root = self.tmp / "root"
        (root / "etc").mkdir(parents=True)
        r = run("systemd-sysusers", f"--root={root}", str(UNITS / "wsgate.sysusers.conf"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex((root / "etc/group").read_text(), r"(?m)^wsgate:x:\d+:")
        self.assertRegex((root / "etc/passwd").read_text(), r"(?m)^wsgate:x:\d+:\d+:")

    def test_socket_unit_matches_service(self):
        service = (UNITS / "wsgated.service").read_text()
        socket = (UNITS / "wsgated.socket").read_text()
        path = re.search(r"(?m)^ListenStream=(\S+)$", socket).group(1)
        self.assertIn(f"WSGATE_ADDRESS=unix:{path}", service)
        self.assertEqual(len(re.findall(r"(?m)^ListenStream=", socket)), 1)
        # The service's RuntimeDirectory must not delete the socket unit's socket on restart.
        self.assertRegex(service, r"(?m)^RuntimeDirectoryPreserve=yes$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
