"""A real `hyperdial server` for the Python client's tests: the binary to run, and a test case
base class that starts one server (on a free loopback port, with its own store in a temporary
directory) for all the tests of a class and stops it after them."""

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _find_binary():
    """HYPERDIAL_BIN, else the newer of target/release and target/debug under
    CARGO_TARGET_DIR or the repository (a stale release build left beside a fresh debug one
    must not be tested)."""
    def usable(path):
        return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)

    if usable(os.environ.get("HYPERDIAL_BIN", "")):
        return os.environ["HYPERDIAL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    built = [p for p in (os.path.join(target, "release", "hyperdial"),
                         os.path.join(target, "debug", "hyperdial")) if usable(p)]
    return max(built, key=os.path.getmtime) if built else None


BINARY = _find_binary()

SKIP_REASON = ("no hyperdial binary (set HYPERDIAL_BIN, or build it with "
               "`cargo build --release -p hyperdial-cli`)")


class RealServerCase(unittest.TestCase):
    """Starts `hyperdial server` once for the class: `cls.url` is its address, `cls.tmp` its
    directory (removed afterwards), `cls.proc` its process. Subclasses set `TMP_PREFIX` and are
    decorated with `unittest.skipUnless(BINARY, SKIP_REASON)`."""

    TMP_PREFIX = "hyperdial-test-"
    SERVER_ARGS = ()  # more arguments of `hyperdial server`

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=cls.TMP_PREFIX)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        cls.url = "http://127.0.0.1:%d" % port
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        cls.log = open(os.path.join(cls.tmp, "server.log"), "wb")
        cls.proc = subprocess.Popen(
            [BINARY, "server", "--db", os.path.join(cls.tmp, "db.sqlite"),
             "--bind", "127.0.0.1:%d" % port, *cls.SERVER_ARGS],
            stdout=cls.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(cls.url + "/api/v1/sweeps", timeout=1).read()
                break
            except Exception:
                if cls.proc.poll() is not None or time.monotonic() > deadline:
                    cls.tearDownClass()
                    raise RuntimeError("hyperdial server did not start")
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
        cls.log.close()
        shutil.rmtree(cls.tmp, True)


def isolate_client(case, server_url=None, client_dir=None):
    """Run `case` (a TestCase) with no HYPERDIAL_* variable of the caller's environment and
    standard error captured; with `server_url`, the client's HYPERDIAL_SERVER, and with
    `client_dir`, its HYPERDIAL_DIR. Undone after the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
    if server_url is not None:
        env["HYPERDIAL_SERVER"] = server_url
    if client_dir is not None:
        env["HYPERDIAL_DIR"] = client_dir
    patcher = mock.patch.dict(os.environ, env, clear=True)
    patcher.start()
    case.addCleanup(patcher.stop)
    captured = mock.patch.object(sys, "stderr", io.StringIO())
    captured.start()
    case.addCleanup(captured.stop)


class RealServerClientCase(RealServerCase):
    """A :class:`RealServerCase` whose tests run the client against that server, isolated by
    :func:`isolate_client` (its files under the server's directory)."""

    def setUp(self):
        isolate_client(self, self.url, os.path.join(self.tmp, "client"))
