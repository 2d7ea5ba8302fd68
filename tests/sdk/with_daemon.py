#!/usr/bin/python3
"""Runs a command against a fresh wsgated (and optionally a WebSocket echo server).

    with_daemon.py --wsgated PATH [--echo] [--timeout S] -- COMMAND ARGS...

Starts wsgated on a unix socket in a new temporary directory, waits (bounded) until its gRPC
channel is ready, optionally starts tests/integration/python_echo_server.py on 127.0.0.1 port 0,
then runs COMMAND with WSGATE_ADDRESS=unix:<socket> (and WSGATE_ECHO_URL=ws://127.0.0.1:<port>/)
in its environment. Exit status: COMMAND's (124 on timeout; 77, skipped, when a --require
path is missing). The daemon's log is printed when
COMMAND fails.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ECHO = os.path.join(REPO, "tests", "integration", "python_echo_server.py")
SDK_SERVER = os.path.join(HERE, "sdk_server.py")
START_TIMEOUT = 15.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsgated", required=True)
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--sdk-server", action="store_true",
                    help="also start sdk_server.py: WSGATE_SDK_SERVER_URL")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--require", action="append", default=[],
                    help="skip (exit 77) unless this path exists")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command")

    for path in args.require:
        if not os.path.exists(path):
            print("with_daemon.py: %s is missing: skipped (for the Node examples run "
                  "client-sdk/scripts/setup-node.sh)" % path)
            return 77

    tmp = tempfile.mkdtemp(prefix="wsgate-sdk-")
    sock = os.path.join(tmp, "gw.sock")
    config = os.path.join(tmp, "wsgated.toml")
    log_path = os.path.join(tmp, "wsgated.log")
    with open(config, "w") as f:
        f.write('[log]\nlevel = "info"\n[timeouts]\nclose_ms = 3000\n')
    log = open(log_path, "wb")
    daemon = subprocess.Popen([args.wsgated, "--config", config, "--socket", sock],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    servers = []
    rc = 1
    try:
        channel = grpc.insecure_channel("unix:" + sock)
        try:
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
        finally:
            channel.close()
        env = dict(os.environ)
        env["WSGATE_ADDRESS"] = "unix:" + sock
        def start_server(script, var):
            proc = subprocess.Popen(["/usr/bin/python3", script, str(int(args.timeout) + 30)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            servers.append(proc)
            line = proc.stdout.readline().decode().strip()  # first line: the port
            if not line.isdigit():
                raise RuntimeError("%s did not print its port: %r" % (script, line))
            env[var] = "ws://127.0.0.1:%s/" % line

        if args.echo:
            start_server(ECHO, "WSGATE_ECHO_URL")
        if args.sdk_server:
            start_server(SDK_SERVER, "WSGATE_SDK_SERVER_URL")
        try:
            rc = subprocess.run(command, env=env, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            print("with_daemon.py: %s timed out after %.0f s" % (command[0], args.timeout))
            rc = 124
    finally:
        for proc in servers:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
        log.close()
        if rc != 0:
            with open(log_path, "rb") as f:
                sys.stdout.write("---- wsgated log ----\n" + f.read().decode(errors="replace"))
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
