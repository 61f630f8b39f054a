"""harness.py: a Vectron cluster of real processes on loopback for the
cluster tests: placement driver nodes (`vectron pd`), workers (`vectron
worker`) and gateways (`vectron gateway`), each with its own data
directory and log, on free ports of 127.0.0.1. The internal API
(cluster.proto) is reached with grpcio and message classes protoc
generates at test time.

Environment (set by tests/cluster/CMakeLists.txt):
  VECTRON_BIN            the vectron binary
  VECTRON_CLUSTER_PROTO  proto/vectron/internal/v1/cluster.proto
  VECTRON_GEN            a directory of the build tree for generated modules
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc

BIN = os.environ.get("VECTRON_BIN", "")
CPROTO = os.environ.get("VECTRON_CLUSTER_PROTO", "")
GEN = os.environ.get("VECTRON_GEN", "")
# Sanitizer builds run 5-15x slower: CMake sets this so waits scale.
TIME_SCALE = float(os.environ.get("VECTRON_TEST_TIME_SCALE", "1"))
START_TIMEOUT = 60.0 * TIME_SCALE
PD_SVC = "/vectron.internal.v1.PlacementDriver/"
WK_SVC = "/vectron.internal.v1.Worker/"


def _load_cpb():
    """protoc --python_out of cluster.proto into the build tree (atomic:
    several CTest processes may generate at once); the tests' one copy."""
    if not (BIN and CPROTO and GEN):
        raise RuntimeError("run through CTest: VECTRON_BIN, VECTRON_CLUSTER_PROTO, VECTRON_GEN")
    os.makedirs(GEN, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=GEN, prefix=".gen-")
    try:
        subprocess.run(["protoc", "--python_out=" + tmp, "-I" + os.path.dirname(CPROTO), CPROTO],
                       check=True)
        os.replace(os.path.join(tmp, "cluster_pb2.py"), os.path.join(GEN, "cluster_pb2.py"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.path.insert(0, GEN)
    import cluster_pb2
    return cluster_pb2


cpb = _load_cpb()


_given = set()


def free_port():
    """A port for a daemon to listen on, chosen below the kernel's
    ephemeral range (32768-60999): a port the kernel hands out with
    bind(0) is also what it hands out as the source port of outgoing
    connections, and the tests (run in parallel) make many, so one could
    take it between this check and the daemon's bind. Random, bindable
    now, and never given twice in this process."""
    rnd = random.Random(os.getpid() ^ int(time.monotonic() * 1e6))
    for _ in range(1000):
        p = rnd.randrange(20000, 32700)
        if p in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        _given.add(p)
        return p
    raise RuntimeError("no free port in 20000..32700")


def wait_for(what, fn, timeout=30.0, every=0.1):
    """Calls fn until it returns something true; returns it, or fails
    with `what` and the last exception after `timeout` seconds."""
    timeout *= TIME_SCALE
    t0, last = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        try:
            r = fn()
            if r:
                return r
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(every)
    raise AssertionError("%s: not within %.0f s (last: %r)" % (what, timeout, last))


class Proc:
    """One vectron process; its stderr (and stdout after the first line)
    go to `log`."""

    def __init__(self, name, root, sub, args):
        self.name, self.sub, self.args = name, sub, list(args)
        self.log = os.path.join(root, name + ".log")
        self.proc, self.first = None, None

    def start(self, wait_line=None):
        logf = open(self.log, "a")
        logf.write("=== start: %s %s %s\n" % (BIN, self.sub, " ".join(self.args)))
        logf.flush()
        self.proc = subprocess.Popen([BIN, self.sub] + self.args, stdout=subprocess.PIPE,
                                     stderr=logf, text=True)
        logf.close()
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline()
            with open(self.log, "a") as f:
                f.write(line[0] or "")
                for rest in self.proc.stdout:
                    f.write(rest)
                    f.flush()

        threading.Thread(target=read, daemon=True).start()
        if wait_line:
            t0 = time.monotonic()
            while line[0] is None and time.monotonic() - t0 < START_TIMEOUT \
                    and self.proc.poll() is None:
                time.sleep(0.02)
            m = re.match(wait_line, line[0] or "")
            if not m:
                self.kill()
                raise AssertionError("%s did not start (first line %r); log:\n%s"
                                     % (self.name, line[0], self.log_text()))
            self.first = m
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code (the process must stop)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not stop within %d s; log:\n%s"
                                 % (self.name, timeout, self.log_text()))
        self.proc = None
        return rc

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()[-20000:]
        except OSError:
            return "(no log)"


def _stub(ch, svc, method, resp):
    return ch.unary_unary(svc + method, request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=resp.FromString)


class PD(Proc):
    def __init__(self, root, node_id, port, raft_port, peers, args=()):
        self.node_id, self.port, self.raft_port = node_id, port, raft_port
        self.addr = "127.0.0.1:%d" % port
        d = os.path.join(root, "pd%d" % node_id)
        super().__init__("pd%d" % node_id, root, "pd",
                         ["--node-id", str(node_id), "--data-dir", d,
                          "--listen", self.addr, "--raft-listen", "127.0.0.1:%d" % raft_port,
                          "--peers", peers, "--heartbeat-grace-ms", "3000",
                          "--reconcile-ms", "500", "--log-level", "info"] + list(args))
        self.ch = None

    def call(self, method, req, resp, timeout=5):
        if self.ch is None:
            self.ch = grpc.insecure_channel(self.addr)
        return _stub(self.ch, PD_SVC, method, resp)(req, timeout=timeout)

    def status(self):
        return self.call("Status", cpb.StatusRequest(version=1), cpb.StatusResponse)

    def kill(self):
        super().kill()
        if self.ch is not None:
            self.ch.close()
            self.ch = None


class Worker(Proc):
    def __init__(self, root, wid, pd_addrs, args=()):
        self.wid = wid
        self.port, self.raft_port = free_port(), free_port()
        self.addr = "127.0.0.1:%d" % self.port
        d = os.path.join(root, "worker%d" % wid)
        super().__init__("worker%d" % wid, root, "worker",
                         ["--worker-id", str(wid), "--data-dir", d, "--listen", self.addr,
                          "--raft-listen", "127.0.0.1:%d" % self.raft_port,
                          "--pd", pd_addrs, "--heartbeat-ms", "300",
                          "--log-level", "info"] + list(args))
        self.ch = None

    def status(self):
        if self.ch is None:
            self.ch = grpc.insecure_channel(self.addr)
        return _stub(self.ch, WK_SVC, "WorkerStatus", cpb.WorkerStatusResponse)(
            cpb.WorkerStatusRequest(version=1), timeout=5)

    def kill(self):
        super().kill()
        if self.ch is not None:
            self.ch.close()
            self.ch = None


class Gateway(Proc):
    LINE = r"vectron gateway: REST on http://([\d.]+):(\d+), gRPC on ([\d.]+):(\d+)"

    def __init__(self, root, name, pd_addrs, args=()):
        super().__init__(name, root, "gateway",
                         ["--pd", pd_addrs, "--rest-port", "0", "--grpc-port", "0",
                          "--threads", "2", "--log-level", "info"] + list(args))

    def start(self, wait_line=None):
        super().start(self.LINE)
        self.rest_port, self.grpc_port = int(self.first.group(2)), int(self.first.group(4))
        self.rest_url = "http://127.0.0.1:%d" % self.rest_port
        return self


class Cluster:
    """n_pd PD nodes and n_workers workers, started and waited for."""

    def __init__(self, root, n_pd=3, n_workers=3, worker_args=()):
        self.root = root
        ports = [(free_port(), free_port()) for _ in range(n_pd)]
        peers = ",".join("%d=127.0.0.1:%d/127.0.0.1:%d" % (i + 1, p, r)
                         for i, (p, r) in enumerate(ports))
        self.pds = [PD(root, i + 1, p, r, peers) for i, (p, r) in enumerate(ports)]
        self.pd_addrs = ",".join(p.addr for p in self.pds)
        for p in self.pds:
            p.start()
        self.leader()
        self.workers = []
        for _ in range(n_workers):
            self.add_worker(worker_args)
        self.gateways = []

    def leader(self, timeout=30):
        """The PD node that says it leads."""
        def find():
            for p in self.pds:
                if p.alive():
                    try:
                        if p.status().leader:
                            return p
                    except grpc.RpcError:
                        pass
            return None
        return wait_for("a PD leader", find, timeout)

    def pd_call(self, method, req, resp):
        return self.leader().call(method, req, resp)

    def workers_info(self):
        return self.pd_call("ListWorkers", cpb.ListWorkersRequest(version=1),
                            cpb.ListWorkersResponse).workers

    def routing(self, name):
        r = self.pd_call("GetRouting", cpb.GetRoutingRequest(version=1, name=name),
                         cpb.GetRoutingResponse)
        return r.collections[0]

    def add_worker(self, args=(), wait=True):
        w = Worker(self.root, len(self.workers) + 1, self.pd_addrs, args).start()
        self.workers.append(w)
        if wait:
            wait_for("worker %d registered" % w.wid,
                     lambda: any(x.id == w.wid and x.alive for x in self.workers_info()))
        return w

    def add_gateway(self, args=()):
        g = Gateway(self.root, "gateway%d" % (len(self.gateways) + 1), self.pd_addrs,
                    args).start()
        self.gateways.append(g)
        return g

    def close(self):
        """SIGTERM to every process still running (gateways, workers, then
        the PD): each must stop cleanly (exit 0, no sanitizer report).
        Returns {name: exit code} of those that did not."""
        bad = {}
        for p in self.gateways + self.workers + self.pds:
            if p.proc is None:
                continue
            try:
                rc = p.stop(timeout=60)
            except AssertionError as e:
                rc = str(e)[:200]
            if rc != 0:
                bad[p.name] = rc
        return bad
