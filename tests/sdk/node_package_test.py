#!/usr/bin/python3
"""The Node package as a user gets it: `npm pack` of client-sdk/node (its prepack step bundles
the protos and LICENSE), the tarball installed into a new project, then node_package_check.js
there against the real daemon.

    node_package_test.py SOURCE_DIR       (under with_daemon.py --echo --sdk-server)

The package is packed from a copy of its sources (with proto/ and LICENSE beside it, as in the
repository), so that the checkout's client-sdk/node never holds the bundled copies while other
tests load the protos from it. The install is offline: the temporary project's lockfile pins
@wsgate/client to the tarball and its dependencies to client-sdk/node/package-lock.json, whose
packages `npm ci` (client-sdk/scripts/setup-node.sh) left in npm's cache.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    source = os.path.abspath(sys.argv[1])
    package_dir = os.path.join(source, "client-sdk", "node")
    with tempfile.TemporaryDirectory(prefix="wsgate-npmpkg-") as tmp:
        copy = os.path.join(tmp, "src")
        shutil.copytree(os.path.join(source, "proto"), os.path.join(copy, "proto"))
        shutil.copyfile(os.path.join(source, "LICENSE"), os.path.join(copy, "LICENSE"))
        shutil.copytree(package_dir, os.path.join(copy, "client-sdk", "node"),
                        ignore=shutil.ignore_patterns("node_modules", "proto", "LICENSE", "*.tgz"))
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp],
                       cwd=os.path.join(copy, "client-sdk", "node"), check=True,
                       stdout=subprocess.DEVNULL)
        [tarball] = glob.glob(os.path.join(tmp, "*.tgz"))
        listing = subprocess.run(["tar", "tzf", tarball], check=True, capture_output=True,
                                 text=True).stdout.split()
        for f in ("package/index.js", "package/LICENSE", "package/proto/wsgate/v1/gateway.proto",
                  "package/proto/google/rpc/status.proto"):
            assert f in listing, (f, listing)
        assert not [f for f in listing if "node_modules" in f or f.endswith(".tgz")], listing

        package = json.load(open(os.path.join(package_dir, "package.json")))
        assert not package.get("private"), "the package must be publishable"
        lock = json.load(open(os.path.join(package_dir, "package-lock.json")))
        spec = "file:" + tarball
        project = os.path.join(tmp, "project")
        os.mkdir(project)
        manifest = {"name": "wsgate-pack-test", "version": "1.0.0", "private": True,
                    "dependencies": {package["name"]: spec}}
        packages = {"": manifest,
                    "node_modules/" + package["name"]: {
                        "version": package["version"], "resolved": spec,
                        "license": package["license"], "engines": package["engines"],
                        "dependencies": package["dependencies"]}}
        packages.update({k: v for k, v in lock["packages"].items() if k})
        with open(os.path.join(project, "package.json"), "w") as f:
            json.dump(manifest, f)
        with open(os.path.join(project, "package-lock.json"), "w") as f:
            json.dump({"name": manifest["name"], "version": manifest["version"],
                       "lockfileVersion": 3, "requires": True, "packages": packages}, f)
        subprocess.run(["npm", "ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=project, check=True)
        shutil.copyfile(os.path.join(HERE, "node_package_check.js"),
                        os.path.join(project, "check.js"))
        out = subprocess.run(["node", "check.js"], cwd=project, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "WSGATE_PROTO_DIR"})
        sys.stdout.write(out.stdout + out.stderr)
        if out.returncode != 0 or "all ok" not in out.stdout:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
