"""Checks of the Dockerfile that need no container engine.

1. Every shared library the built wsgated and wsgate-health load (ldd) belongs, by `dpkg -S`,
   to a package the runtime stage installs (the runtime stage names all of them, even those
   debian:bookworm-slim already has, so that the image does not depend on the base's contents),
   and the runtime stage installs nothing that no binary needs, except the few listed in
   EXTRA_RUNTIME with their reason.
2. The build stage builds with scripts/setup.sh --daemon-only, the README's set-up step limited to
   the shipped binaries (no tests, benchmarks or Node), and installs no packages of its own
   (scripts/deps-daemon.txt is the one list).
3. The runtime stage runs as a non-root user, keeps the socket in a volume, and its HEALTHCHECK
   runs the probe shipped with the project; the files it copies from the build stage are the
   ones the build produces, and it copies every directory the top-level CMakeLists.txt adds
   for that build (not tests/ and bench/, which it turns off).
4. deploy/kubernetes/wsgated-sidecar.yaml (when PyYAML is there): the socket volume is shared,
   the probes run wsgate-health, every container has resource limits, and the pod's
   supplementalGroups include the image's gid."""
import pathlib
import re
import subprocess
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from deploy_util import BUILD, SOURCE, WSGATE_HEALTH, WSGATED  # noqa: E402

EXTRA_RUNTIME = {
    "ca-certificates": "the system trust store for wss:// upstreams (tls.ca_file empty)",
}


def stages(dockerfile):
    """{stage name: [instructions, continuation lines joined]} in order; unnamed: final."""
    lines = re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines()
    out, name = {}, None
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            name = m.group(2) or "final"
            out[name] = [line]
        elif name:
            out[name].append(line)
    return out


def apt_packages(instructions):
    pkgs = set()
    for ins in instructions:
        for cmd in re.split(r"&&|;", ins):
            m = re.search(r"apt-get\s+install\s+(.*)", cmd)
            if m:
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def packages_of(paths):
    """{path: Debian package} for the given files, with one `dpkg -S` call."""
    candidates = {}
    for path in paths:
        p = pathlib.Path(path)
        names = {str(p), str(p.resolve())}
        for n in list(names):  # usrmerge: dpkg may know /lib/... or /usr/lib/...
            if n.startswith("/usr/lib/"):
                names.add(n[len("/usr"):])
            elif n.startswith("/lib"):
                names.add("/usr" + n)
        candidates[path] = names
    every = sorted({n for names in candidates.values() for n in names})
    r = subprocess.run(["dpkg", "-S", *every], capture_output=True, text=True)
    owner = {}
    for line in r.stdout.splitlines():
        pkgs, _, file = line.partition(": ")
        owner[file.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return {path: next((owner[n] for n in names if n in owner), None)
            for path, names in candidates.items()}


def ldd_libraries(binary):
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
    libs = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(\S+)\s+\(", line)
        if m:
            libs.append((m.group(1), m.group(2)))
        elif "not found" in line:
            raise AssertionError(f"{binary}: {line.strip()}")
    return libs


class Dockerfile(unittest.TestCase):
    def setUp(self):
        self.stages = stages(SOURCE / "Dockerfile")
        self.assertIn("build", self.stages)
        self.assertIn("final", self.stages)
        self.build, self.final = self.stages["build"], self.stages["final"]

    def test_runtime_packages_cover_ldd(self):
        installed = apt_packages(self.final)
        needed = {}
        libs = dict(lib for b in (WSGATED, WSGATE_HEALTH) for lib in ldd_libraries(b))
        owners = packages_of(libs.values())
        for soname, path in libs.items():
            pkg = owners[path]
            self.assertIsNotNone(pkg, f"{soname} ({path}) belongs to no Debian package")
            needed.setdefault(pkg, set()).add(soname)
        missing = {p: sorted(s) for p, s in needed.items() if p not in installed}
        self.assertEqual(missing, {}, "the runtime stage must install these packages")
        unneeded = installed - set(needed) - set(EXTRA_RUNTIME)
        self.assertEqual(unneeded, set(), "installed in the runtime stage but needed by nothing")
        print("runtime packages:", " ".join(sorted(needed)))

    def test_build_stage_is_the_readme_setup_step(self):
        self.assertRegex(self.build[0], r"(?i)^FROM\s+debian:bookworm\s+AS\s+build$")
        runs = [i for i in self.build if i.upper().startswith("RUN")]
        self.assertTrue(any(re.search(r"(^|\s|&&)scripts/setup\.sh --daemon-only(\s|$|&&)", r)
                            for r in runs), runs)
        self.assertEqual(apt_packages(self.build), set(),
                         "the build stage must get its packages from scripts/setup.sh")
        readme = (SOURCE / "README.md").read_text()
        self.assertIn("`scripts/setup.sh` installs the packages", readme)

    def test_runtime_stage(self):
        final = self.final
        self.assertRegex(final[0], r"(?i)^FROM\s+debian:bookworm-slim(\s|$)")
        users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
        self.assertTrue(users and not users[-1].startswith(("root", "0")), users)
        self.assertTrue(any(re.match(r"VOLUME\s+.*?/run/wsgate", i) for i in final), final)
        health = [i for i in final if i.upper().startswith("HEALTHCHECK")]
        self.assertEqual(len(health), 1)
        self.assertIn("wsgate-health", health[0])
        for ins in final:
            m = re.match(r"COPY\s+--from=build\s+(.*)\s+(\S+)$", ins)
            if not m:
                continue
            for src in m.group(1).split():
                rel = pathlib.PurePosixPath(src).relative_to("/src")
                if rel.parts[0] == "build-daemon":  # the build tree: same layout as ours
                    self.assertTrue((BUILD / pathlib.Path(*rel.parts[1:])).exists(), src)
                else:
                    self.assertTrue((SOURCE / rel).exists(), src)

    def test_build_stage_copies_every_source_directory(self):
        top = (SOURCE / "CMakeLists.txt").read_text()
        subdirs = set(re.findall(r"add_subdirectory\((\S+?)\)", top)) - {"tests", "bench"}
        copied = set()
        for ins in self.build:
            m = re.match(r"COPY\s+(?!--from)(.*)\s+\S+$", ins)
            if m:
                copied |= {s.rstrip("/") for s in m.group(1).split()}
        self.assertEqual(subdirs - copied, set(), "not copied into the build stage")
        self.assertIn("scripts", copied)
        self.assertEqual(copied & {"tests", "bench"}, set(), "the image does not build them")


class KubernetesExample(unittest.TestCase):
    def test_sidecar_pod(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("PyYAML not installed")
        docs = list(yaml.safe_load_all((SOURCE / "deploy/kubernetes/wsgated-sidecar.yaml")
                                       .read_text()))
        pod = next(d for d in docs if d["kind"] == "Pod")
        spec = pod["spec"]
        gid = int(re.search(r"groupadd .*--gid (\d+)",
                            (SOURCE / "Dockerfile").read_text()).group(1))
        self.assertIn(gid, spec["securityContext"]["supplementalGroups"])
        run_volume = next(v for v in spec["volumes"] if "emptyDir" in v)["name"]
        containers = {c["name"]: c for c in spec["containers"]}
        self.assertIn("wsgated", containers)
        self.assertGreaterEqual(len(containers), 2)
        for c in containers.values():
            mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
            self.assertEqual(mounts.get(run_volume), "/run/wsgate", c["name"])
            self.assertIn("limits", c["resources"], c["name"])
        w = containers["wsgated"]
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertEqual(w[probe]["exec"]["command"][0], "wsgate-health", probe)
        # One variable names the socket for the daemon and the app (docs/configuration.md).
        for c in containers.values():
            env = {e["name"]: e["value"] for e in c.get("env", [])}
            self.assertEqual(env.get("WSGATE_ADDRESS"), "unix:/run/wsgate/wsgated.sock", c["name"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
