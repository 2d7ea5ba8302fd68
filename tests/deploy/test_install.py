"""deploy/install.sh (cmake --install of the components daemon and capi) into a temporary
DESTDIR: the layout, the units configured with the prefix, the default configuration (kept when
it exists), and the installed unit passing systemd-analyze verify with the staged binary."""
import filecmp
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from deploy_util import BUILD, SOURCE, WSGATED  # noqa: E402

EXAMPLE = SOURCE / "deploy/config/wsgated.example.toml"


class Install(unittest.TestCase):
    def setUp(self):
        self.dest = pathlib.Path(tempfile.mkdtemp(prefix="wsgate-destdir-"))
        self.addCleanup(shutil.rmtree, self.dest)

    def install(self, *args):
        r = subprocess.run([str(SOURCE / "deploy/install.sh"), "--build-dir",
                            str(WSGATED.parent.parent.parent), *args],
                           env={**os.environ, "DESTDIR": str(self.dest)},
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_prefix_usr(self):
        self.install("--prefix", "/usr")
        d = self.dest
        for f in ("usr/bin/wsgated", "usr/bin/wsgate-health", "usr/bin/wsgate"):
            self.assertTrue(os.access(d / f, os.X_OK), f)
        self.assertTrue(list(d.glob("usr/lib*/**/libwebsocket.so.0")), "libwebsocket.so.0")
        unit = (d / "usr/lib/systemd/system/wsgated.service").read_text()
        self.assertIn("ExecStart=/usr/bin/wsgated --config /etc/wsgate/wsgated.toml", unit)
        self.assertIn("Documentation=file:/usr/share/doc/wsgate/operations.md", unit)
        settings = [l for l in unit.splitlines() if not l.startswith("#")]
        self.assertEqual([l for l in settings if "/usr/local" in l], [])
        self.assertTrue((d / "usr/lib/systemd/system/wsgated.socket").exists())
        self.assertTrue((d / "usr/lib/sysusers.d/wsgate.conf").exists())
        self.assertTrue(filecmp.cmp(d / "etc/wsgate/wsgated.toml", EXAMPLE, shallow=False))
        self.assertTrue((d / "usr/share/doc/wsgate/operations.md").exists())
        self.assertEqual(list(d.glob("usr/lib/systemd/system/*.in")), [])
        for name in ("wsgated.service", "wsgated.socket"):  # every template variable filled in
            text = (d / "usr/lib/systemd/system" / name).read_text()
            self.assertRegex(text, r"(?m)^Documentation=file:/usr/share/doc/wsgate/")
            self.assertNotRegex(text, r"@[A-Z_]+@")
        # The installed configuration is valid for the installed binary.
        r = subprocess.run([str(d / "usr/bin/wsgated"), "--config",
                            str(d / "etc/wsgate/wsgated.toml"), "--check-config"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The installed unit verifies once ExecStart= points into the staging tree.
        (self.dest / "wsgated.service").write_text(
            unit.replace("/usr/bin/wsgated", str(d / "usr/bin/wsgated")))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            str(self.dest / "wsgated.service")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_default_prefix_and_existing_config_kept(self):
        self.install()
        d = self.dest
        self.assertTrue(os.access(d / "usr/local/bin/wsgated", os.X_OK))
        unit = (d / "usr/local/lib/systemd/system/wsgated.service").read_text()
        self.assertIn("ExecStart=/usr/local/bin/wsgated --config /etc/wsgate/wsgated.toml", unit)
        self.assertIn("Documentation=file:/usr/local/share/doc/wsgate/operations.md", unit)
        self.assertTrue((d / "usr/local/lib/sysusers.d/wsgate.conf").exists())
        conf = d / "etc/wsgate/wsgated.toml"
        conf.write_text("io_threads = 2\n")
        out = self.install()
        self.assertIn("Kept the existing /etc/wsgate/wsgated.toml", out)
        self.assertEqual(conf.read_text(), "io_threads = 2\n")
        self.assertTrue(filecmp.cmp(d / "etc/wsgate/wsgated.toml.dist", EXAMPLE, shallow=False))

    def test_refuses_relative_prefix(self):
        r = subprocess.run([str(SOURCE / "deploy/install.sh"), "--prefix", "usr"],
                           env={**os.environ, "DESTDIR": str(self.dest)}, capture_output=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
