"""Build step of wsgate-client: generates the gRPC stubs into the wheel (metadata: pyproject.toml).

Why protoc + grpc_python_plugin and not grpc_tools: Debian bookworm's python3-grpc-tools embeds
libprotoc 3.5.1, older than the protobuf 4.21 runtime the stubs run against; protoc 3.21 and
grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc) are the same generators
the CMake build uses for the daemon's tests (proto/CMakeLists.txt).

The protos come from `proto/` next to this file in an sdist (copied there by `sdist` below), else
from the repository's `proto/` two levels up (an install from a checkout).
"""
import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
# The API's files: the wsgate.v1 services and google.rpc.Status (the error details' envelope).
PROTOS = ["google/rpc/status.proto", "wsgate/v1/common.proto", "wsgate/v1/gateway.proto",
          "wsgate/v1/admin.proto", "wsgate/v1/protocol_component.proto"]


def proto_root():
    for root in (os.path.join(HERE, "proto"), os.path.join(HERE, "..", "..", "proto")):
        if all(os.path.isfile(os.path.join(root, p)) for p in PROTOS):
            return os.path.normpath(root)
    raise SystemExit("wsgate-client: the protos (%s) are neither in %s/proto nor in the "
                     "repository's proto/" % (", ".join(PROTOS), HERE))


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise SystemExit("wsgate-client: %s not found; it generates the gRPC stubs at build time "
                         "(Debian: apt-get install %s)" % (name, package))
    return path


class BuildWithStubs(build_py):
    """build_py, then protoc writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py into the build tree."""

    def run(self):
        super().run()
        root = proto_root()
        protoc = tool("protoc", "protobuf-compiler")
        plugin = tool("grpc_python_plugin", "protobuf-compiler-grpc")
        with_services = [p for p in PROTOS
                         if re.search(r"^service ", open(os.path.join(root, p)).read(), re.M)]
        out = self.build_lib
        subprocess.check_call([protoc, "-I", root, "--python_out=" + out, "--pyi_out=" + out]
                              + PROTOS)
        subprocess.check_call([protoc, "-I", root, "--grpc_out=" + out,
                               "--plugin=protoc-gen-grpc=" + plugin] + with_services)
        # wsgate.v1 is a regular subpackage of the helper's package; google.rpc stays a
        # namespace portion (google.protobuf lives in another distribution).
        open(os.path.join(out, "wsgate", "v1", "__init__.py"), "a").close()


class SdistWithProtos(sdist):
    """An sdist carries the protos, so that it builds away from the repository."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = proto_root()
        for p in PROTOS:
            os.makedirs(os.path.dirname(os.path.join(base_dir, "proto", p)), exist_ok=True)
            shutil.copyfile(os.path.join(root, p), os.path.join(base_dir, "proto", p))


setup(cmdclass={"build_py": BuildWithStubs, "sdist": SdistWithProtos})
