"""Helpers shared by the deploy tests: paths from the environment ctest sets, temp dirs."""
import os
import pathlib

SOURCE = pathlib.Path(os.environ.get("WSGATE_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BUILD = pathlib.Path(os.environ.get("WSGATE_BUILD_DIR", SOURCE / "build"))
WSGATED = pathlib.Path(os.environ.get("WSGATED", BUILD / "service/daemon/wsgated"))
WSGATE_HEALTH = pathlib.Path(os.environ.get("WSGATE_HEALTH", BUILD / "service/daemon/wsgate-health"))
UNITS = SOURCE / "deploy/systemd"
