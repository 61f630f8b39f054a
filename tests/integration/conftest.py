"""conftest.py: fixtures of the integration tests. They start the real
`vectron serve` binary on loopback (ephemeral ports, a temporary data
directory) and talk to it over REST (requests) and gRPC (grpcio, generic
calls with message classes that protoc generates at test time).

Environment (set by tests/integration/CMakeLists.txt):
  VECTRON_BIN     the vectron binary
  VECTRON_PROTO   proto/vectron/v1/vectron.proto
  VECTRON_GEN     a directory of the build tree for the generated module
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from vtclient import (HTTP_OF, METHODS, SERVICE, ApiError, Grpc, Rest,  # noqa: F401
                      pb)

BIN = os.environ.get("VECTRON_BIN", "")
START_TIMEOUT = 60.0  # a loaded 2-core CI machine opens data slowly


class Server:
    """One `vectron serve` process. stdout's first line gives the ports;
    everything else goes to `log`."""

    def __init__(self, data_dir, args=(), shards=2):
        self.data_dir = data_dir
        self.args = ["--data-dir", data_dir, "--rest-port", "0", "--grpc-port", "0",
                     "--shards", str(shards), "--threads", "2"] + list(args)
        self.log = os.path.join(os.path.dirname(data_dir.rstrip("/")),
                                os.path.basename(data_dir.rstrip("/")) + ".log")
        self.proc = None
        self.start()

    def start(self):
        logf = open(self.log, "a")
        logf.write("=== start: %s serve %s\n" % (BIN, " ".join(self.args)))
        logf.flush()
        self.proc = subprocess.Popen([BIN, "serve"] + self.args, stdout=subprocess.PIPE,
                                     stderr=logf, text=True)
        logf.close()
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline()
            with open(self.log, "a") as f:  # keep draining stdout
                for rest in self.proc.stdout:
                    f.write(rest)

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t0 = time.monotonic()
        while line[0] is None and time.monotonic() - t0 < START_TIMEOUT and self.proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.01)
        m = re.match(r"vectron serve: REST on http://([\d.]+):(\d+), gRPC on ([\d.]+):(\d+), data in (.*)",
                     line[0] or "")
        if not m:
            rc = self.proc.poll()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
            pytest.fail("vectron serve did not start (exit %s, first line %r); its log:\n%s"
                        % (rc, line[0], self.log_text()), pytrace=False)
        self.rest_port, self.grpc_port = int(m.group(2)), int(m.group(4))
        self.rest_url = "http://127.0.0.1:%d" % self.rest_port

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()[-20000:]
        except OSError:
            return "(no log)"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stops with `sig`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("vectron serve did not stop within %d s after signal %d; log:\n%s"
                        % (timeout, sig, self.log_text()), pytrace=False)
        self.proc = None
        return rc

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="vt-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(tmp_root):
    """Factory: make_server(args=(), data_dir=None) -> Server; every server
    it made is stopped (SIGTERM) at the end of the test and must exit 0."""
    made = []

    def make(args=(), data_dir=None, shards=2):
        d = data_dir or tempfile.mkdtemp(dir=tmp_root, prefix="data-")
        s = Server(d, args, shards)
        made.append(s)
        return s

    yield make
    for s in made:
        if s.proc is not None:
            crashed = s.proc.poll()
            rc = s.stop()
            assert crashed is None, "the server died during the test (exit %s); log:\n%s" % (
                crashed, s.log_text())
            assert rc == 0, "exit %s after SIGTERM; log:\n%s" % (rc, s.log_text())


@pytest.fixture(scope="module")
def server(tmp_root):
    """One server for a module's tests; checked alive after each module."""
    d = tempfile.mkdtemp(dir=tmp_root, prefix="data-")
    s = Server(d)
    yield s
    crashed = s.proc.poll()
    rc = s.stop()
    assert crashed is None, "the server died (exit %s); log:\n%s" % (crashed, s.log_text())
    assert rc == 0, "exit %s after SIGTERM; log:\n%s" % (rc, s.log_text())


@pytest.fixture(params=["rest", "grpc"])
def client(request, server):
    """The same API over either transport."""
    c = Rest(server) if request.param == "rest" else Grpc(server)
    yield c
    if request.param == "grpc":
        c.close()


def uniq(prefix):
    uniq.n += 1
    return "%s_%d_%d" % (prefix, os.getpid(), uniq.n)


uniq.n = 0


def expect_error(fn, code, *words):
    """Runs fn, which must fail with status `code` and a message holding
    every one of `words` (the field it names). Returns the error."""
    with pytest.raises(ApiError) as ei:
        fn()
    e = ei.value
    assert e.code == code, "expected %s, got %s: %s" % (code, e.code, e.message)
    if e.http is not None and code in HTTP_OF:
        assert e.http == HTTP_OF[code], "HTTP %s for %s: %s" % (e.http, code, e.message)
    for w in words:
        assert w in e.message, "message %r does not name %r" % (e.message, w)
    return e
