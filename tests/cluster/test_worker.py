"""test_worker.py: `vectron worker` against a fake placement driver.

The fake PD (a grpcio server in this process) implements RegisterWorker
and Heartbeat of vectron.internal.v1.PlacementDriver with assignments the
test sets; the workers are real processes on loopback. Shard commands are
built here in lib/shard's format (shard/cmd.h: a few little-endian
fields), collection configs in lib/coll's (JSON), so no helper binary is
needed. The tests share one cluster and run in order:

  1. 3 workers, 2 shards x rf 3 (bootstrap): a leader per group, writes
     on the leader, "not the leader; leader: <addr>" on a follower,
     eventual and linearizable searches, the epoch / version / not-hosted
     errors, a search-only worker refusing writes;
  2. a 4th worker added as a non-voter (catches up), then as a voter
     (promoted: it can then be elected), then a replica removed from a
     worker (its directory disappears);
  3. SIGKILL a worker and restart it while the PD refuses it: it reopens
     its replicas from disk and serves them.

Environment (tests/cluster/CMakeLists.txt): VECTRON_BIN,
VECTRON_CLUSTER_PROTO, VECTRON_GEN.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from concurrent import futures

import grpc
import pytest

BIN = os.environ.get("VECTRON_BIN", "")
PROTO = os.environ.get("VECTRON_CLUSTER_PROTO", "")
GEN = os.environ.get("VECTRON_GEN", "")
WSVC = "/vectron.internal.v1.Worker/"
DIM = 4
G1, G2 = 101, 102          # raft group ids of shards 0 and 1
EPOCH = 5                  # the shards' epoch


from harness import cpb as pb, free_port  # noqa: E402 (cluster.proto, generated once)




def wait_for(what, fn, timeout=15.0, every=0.1):
    """Polls fn until it returns a truthy value; fails naming `what`."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except grpc.RpcError as e:
            last = "%s: %s" % (e.code().name, e.details())
        time.sleep(every)
    pytest.fail("timed out waiting for %s (last error: %s)" % (what, last))


# ---- lib/shard command and lib/coll config encodings -----------------------

def upsert_cmd(points):
    """points: [(id, vector, payload dict or None)] -> an UPSERT command."""
    b = struct.pack("<BBHI", 1, 1, 0, len(points)) + struct.pack("<I", DIM)
    for pid, vec, payload in points:
        idb = pid.encode()
        pl = json.dumps(payload).encode() if payload is not None else b""
        b += struct.pack("<H", len(idb)) + idb + struct.pack("<%df" % DIM, *vec)
        b += struct.pack("<I", len(pl)) + pl
    return b


def coll_config(name, shards, index_mode="sync"):
    return json.dumps({"version": 1, "name": name, "shard_count": shards, "rescore": True,
                       "oversampling": 2.0, "routing": "range", "dim": DIM,
                       "distance": "euclid", "m": 16, "ef_construction": 100, "ef_search": 32,
                       "quant": "none", "index_mode": index_mode,
                       "fields": [{"path": "color", "type": "keyword"}]},
                      sort_keys=True, separators=(",", ":")).encode()


# ---- the fake PD -------------------------------------------------------------

class FakePD:
    """RegisterWorker + Heartbeat. `plan` maps worker id -> [Assignment];
    set_plan bumps the epoch so every worker gets its full list."""

    def __init__(self):
        self.lock = threading.Lock()
        self.workers = {}      # id -> WorkerInfo
        self.reports = {}      # id -> [ReplicaReport]
        self.plan = {}
        self.elect = []        # (worker id, Elect) sent once
        self.epoch = 1
        self.refuse = set()    # worker ids answered UNAVAILABLE
        self.removed = set()   # worker ids the PD removed
        self.port = free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        h = grpc.method_handlers_generic_handler("vectron.internal.v1.PlacementDriver", {
            "RegisterWorker": grpc.unary_unary_rpc_method_handler(
                self.register, request_deserializer=pb.RegisterWorkerRequest.FromString,
                response_serializer=lambda m: m.SerializeToString()),
            "Heartbeat": grpc.unary_unary_rpc_method_handler(
                self.heartbeat, request_deserializer=pb.HeartbeatRequest.FromString,
                response_serializer=lambda m: m.SerializeToString()),
            "GetRouting": grpc.unary_unary_rpc_method_handler(
                self.routing, request_deserializer=pb.GetRoutingRequest.FromString,
                response_serializer=lambda m: m.SerializeToString()),
        })
        self.server.add_generic_rpc_handlers((h,))
        self.server.add_insecure_port("127.0.0.1:%d" % self.port)
        self.server.start()

    def register(self, req, ctx):
        if req.version != 1:
            ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "protocol version %d" % req.version)
        with self.lock:
            if req.worker.id in self.refuse:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "fake PD: refusing this worker")
            if req.worker.id in self.removed:
                ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          "worker %d was removed" % req.worker.id)
            self.workers[req.worker.id] = req.worker
            return pb.RegisterWorkerResponse(epoch=self.epoch)

    def heartbeat(self, req, ctx):
        with self.lock:
            if req.worker in self.refuse:
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "fake PD: refusing this worker")
            if req.worker not in self.workers:
                return pb.HeartbeatResponse(epoch=self.epoch, registered=False)
            self.reports[req.worker] = list(req.replicas)
            resp = pb.HeartbeatResponse(epoch=self.epoch, registered=True)
            el = [e for w, e in self.elect if w == req.worker]
            self.elect = [(w, e) for w, e in self.elect if w != req.worker]
            resp.elect.extend(el)
            if req.known_epoch == self.epoch:
                resp.unchanged = True
            else:
                resp.assignments.extend(self.plan.get(req.worker, []))
            return resp

    def routing(self, req, ctx):
        """The shards of a collection as the plan has them (a worker asks
        whether a group it lost goes on); NOT_FOUND when none."""
        with self.lock:
            shards = {a.shard: a.group for lst in self.plan.values() for a in lst
                      if a.collection == req.name}
        if not shards:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "collection %r not found" % req.name)
        route = pb.CollectionRoute(name=req.name, shard_count=len(shards))
        for idx, g in sorted(shards.items()):
            route.shards.add(index=idx, group=g)
        return pb.GetRoutingResponse(epoch=self.epoch, collections=[route])

    def set_plan(self, plan):
        with self.lock:
            self.plan = plan
            self.epoch += 1

    def stop(self):
        self.server.stop(0)


# ---- worker processes -----------------------------------------------------------

class FollowerPD:
    """A PD follower: every call gets "not the leader; leader: <addr>"."""

    def __init__(self, leader_addr):
        self.port = free_port()
        self.calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))

        def refuse(req, ctx):
            self.calls += 1
            ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the leader; leader: " + leader_addr)
        h = grpc.method_handlers_generic_handler("vectron.internal.v1.PlacementDriver", {
            m: grpc.unary_unary_rpc_method_handler(refuse, request_deserializer=lambda b: b,
                                                   response_serializer=lambda b: b)
            for m in ("RegisterWorker", "Heartbeat")})
        self.server.add_generic_rpc_handlers((h,))
        self.server.add_insecure_port("127.0.0.1:%d" % self.port)
        self.server.start()

    def stop(self):
        self.server.stop(0)


class Worker:
    def __init__(self, pd, root, n, role="normal", pd_addrs=None):
        self.pd, self.n, self.role = pd, n, role
        self.pd_addrs = pd_addrs or "127.0.0.1:%d" % pd.port
        self.dir = os.path.join(root, "w%d" % n)
        self.port, self.raft_port = free_port(), free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.raft_addr = "127.0.0.1:%d" % self.raft_port
        self.log_path = os.path.join(root, "w%d.log" % n)
        self.proc = None
        self.id = None
        self.channel = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "worker", "--data-dir", self.dir, "--listen", self.addr,
             "--raft-listen", self.raft_addr, "--pd", self.pd_addrs,
             "--heartbeat-ms", "100", "--election-ms", "500", "--threads", "2",
             "--role", self.role, "--log-level", "info"],
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("vectron worker "), "worker %d did not start: %r" % (self.n, line)
        self.id = int(line.split()[2].rstrip(":"))
        self.channel = grpc.insecure_channel(self.addr)

    def call(self, method, req, resp_cls, timeout=10):
        f = self.channel.unary_unary(WSVC + method, request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=resp_cls.FromString)
        return f(req, timeout=timeout)

    def status(self):
        return self.call("WorkerStatus", pb.WorkerStatusRequest(version=1), pb.WorkerStatusResponse)

    def replica(self, group):
        for r in self.status().replicas:
            if r.group == group:
                return r
        return None

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.channel:
            self.channel.close()
            self.channel = None
        self.log.close()

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def peer(w, raft_id, voter=True):
    return pb.Peer(raft_id=raft_id, worker=w.id, addr=w.addr, raft_addr=w.raft_addr,
                   role=pb.VOTER if voter else pb.NONVOTER)


def assignment(group, shard, raft_id, peers, voter=True, bootstrap=True, epoch=EPOCH,
               collection="c", config=None):
    return pb.Assignment(collection=collection, shard=shard, group=group, epoch=epoch,
                         raft_id=raft_id, role=pb.VOTER if voter else pb.NONVOTER,
                         bootstrap=bootstrap, rf=3, peers=peers,
                         config=config or coll_config("c", 2))


def ref(group, epoch=EPOCH):
    return pb.ShardRef(group=group, epoch=epoch)


def leader_of(workers, group):
    """The worker whose replica of `group` leads, or None."""
    for w in workers:
        if w.proc.poll() is None:
            r = w.replica(group)
            if r and r.state == "leader":
                return w
    return None


def search(w, group, vec, linearizable=False, k=3, epoch=EPOCH):
    return w.call("ShardSearch", pb.ShardSearchRequest(
        version=1, shard=ref(group, epoch), vector=vec, k=k, with_payload=True,
        linearizable=linearizable), pb.ShardSearchResponse)


def write(w, group, points, epoch=EPOCH, timeout=10, **kw):
    return w.call("ShardWrite", pb.ShardWriteRequest(
        version=1, shard=ref(group, epoch), cmd=upsert_cmd(points), entries=len(points), **kw),
        pb.ShardWriteResponse, timeout=timeout)


def rpc_error(fn):
    with pytest.raises(grpc.RpcError) as ei:
        fn()
    return ei.value.code(), ei.value.details()


PTS = [("a", [0, 0, 0, 0], {"color": "red"}), ("b", [1, 1, 1, 1], {"color": "blue"}),
       ("c", [2, 2, 2, 2], None)]


@pytest.fixture(scope="module")
def cluster():
    root = tempfile.mkdtemp(prefix="vt-cluster-")
    pd = FakePD()
    ws = []
    try:
        for i in range(3):
            w = Worker(pd, root, i + 1)
            w.start()
            ws.append(w)
        wait_for("3 workers registered", lambda: len(pd.workers) == 3)
        peers = [peer(w, i + 1) for i, w in enumerate(ws)]
        plan = {w.id: [assignment(G1, 0, i + 1, peers), assignment(G2, 1, i + 1, peers)]
                for i, w in enumerate(ws)}
        pd.set_plan(plan)
        yield {"pd": pd, "root": root, "workers": ws, "peers": peers, "plan": plan}
    finally:
        for w in ws:
            if w.proc:
                w.kill(signal.SIGTERM)
        pd.stop()
        if os.environ.get("VT_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)


def test_leaders_writes_reads_errors(cluster):
    ws = cluster["workers"]
    for g in (G1, G2):
        wait_for("a leader of group %d" % g, lambda g=g: leader_of(ws, g))
    # every worker reports both replicas to the PD: one leader per group,
    # every replica caught up
    def reports_ok():
        with cluster["pd"].lock:
            reps = [r for w in ws for r in cluster["pd"].reports.get(w.id, [])]
        return (len(reps) == 6 and all(r.caught_up and r.term > 0 for r in reps) and
                sorted(r.group for r in reps if r.leader) == [G1, G2])
    wait_for("reports", reports_ok)
    lead = leader_of(ws, G1)
    r = write(lead, G1, PTS)
    assert (r.upserted, r.created) == (3, 3)
    # validate_only writes nothing
    r = write(lead, G1, [("zz", [9, 9, 9, 9], None)], validate_only=True)
    assert r.upserted == 0
    bad = rpc_error(lambda: write(lead, G1, [("zz", [float("nan")] * DIM, None)],
                                  validate_only=True))
    assert bad[0] == grpc.StatusCode.INVALID_ARGUMENT, bad
    # a follower names the leader's gRPC address
    fol = [w for w in ws if w is not lead]
    code, msg = rpc_error(lambda: write(fol[0], G1, PTS))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert msg == "not the leader; leader: %s" % lead.addr, msg
    # eventual read on a follower, linearizable on the leader
    hit = wait_for("the point on a follower",
                   lambda: [h for h in search(fol[1], G1, [0, 0, 0, 0.1]).hits if h.id == b"a"])
    assert json.loads(hit[0].payload) == {"color": "red"}
    res = search(lead, G1, [2, 2, 2, 2.1], linearizable=True)
    assert res.hits[0].id == b"c" and res.applied > 0
    code, msg = rpc_error(lambda: search(fol[0], G1, [0] * DIM, linearizable=True))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and msg.startswith("not the leader; leader: ")
    # get, scroll, count (with a filter), status
    g = lead.call("ShardGet", pb.ShardGetRequest(version=1, shard=ref(G1), ids=[b"b", b"x"],
                                                 with_vector=True), pb.ShardGetResponse)
    assert [h.id for h in g.hits] == [b"b"] and list(g.hits[0].vector) == [1, 1, 1, 1]
    s = lead.call("ShardScroll", pb.ShardScrollRequest(version=1, shard=ref(G1), limit=10),
                  pb.ShardScrollResponse)
    assert sorted(h.id for h in s.hits) == [b"a", b"b", b"c"]
    c = lead.call("ShardCount", pb.ShardCountRequest(
        version=1, shard=ref(G1), filter='{"must":[{"key":"color","match":{"value":"red"}}]}'),
        pb.ShardCountResponse)
    assert c.count == 1
    st = lead.call("ShardStatus", pb.ShardStatusRequest(version=1, shard=ref(G1)),
                   pb.ShardStatusResponse)
    assert st.leader and st.points == 3
    # the protocol's errors, with their exact messages
    code, msg = rpc_error(lambda: search(lead, G1, [0] * DIM, epoch=EPOCH - 1))
    assert (code, msg) == (grpc.StatusCode.FAILED_PRECONDITION,
                           "stale shard epoch: request %d, replica %d" % (EPOCH - 1, EPOCH))
    assert search(lead, G1, [0] * DIM, epoch=EPOCH + 3).hits  # newer: served
    code, msg = rpc_error(lambda: lead.call("ShardSearch", pb.ShardSearchRequest(
        version=2, shard=ref(G1), vector=[0] * DIM, k=1), pb.ShardSearchResponse))
    assert (code, msg) == (grpc.StatusCode.FAILED_PRECONDITION,
                           "protocol version 2, this node speaks 1")
    code, msg = rpc_error(lambda: search(lead, 999, [0] * DIM))
    assert (code, msg) == (grpc.StatusCode.NOT_FOUND, "shard group 999 not hosted here")
    # several shards in one call: each answers in its own part, as ShardSearch would
    q = pb.ShardSearchRequest(vector=[2, 2, 2, 2.1], k=2, with_payload=True)
    many = lead.call("ShardSearchMany", pb.ShardSearchManyRequest(
        version=1, query=q, shards=[ref(G1), ref(G2), ref(999), ref(G1, EPOCH - 1)]),
        pb.ShardSearchManyResponse)
    assert [p.group for p in many.parts] == [G1, G2, 999, G1]
    one = pb.ShardSearchResponse.FromString(many.parts[0].response)
    assert many.parts[0].status == 0 and [h.id for h in one.hits] == [b"c", b"b"]
    assert many.parts[1].status == 0  # G2 here too (a replica of it: empty)
    assert len(pb.ShardSearchResponse.FromString(many.parts[1].response).hits) == 0
    assert (many.parts[2].status, many.parts[2].message) == (
        grpc.StatusCode.NOT_FOUND.value[0], "shard group 999 not hosted here")
    assert many.parts[3].status == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert many.parts[3].message.startswith("stale shard epoch")
    code, msg = rpc_error(lambda: lead.call("ShardSearchMany", pb.ShardSearchManyRequest(
        version=1, query=q), pb.ShardSearchManyResponse))
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "shards: none")


def test_async_index_read_your_writes(cluster):
    """An async-index collection: a linearizable search right after a
    write sees it (the worker waits for the index off the Raft thread);
    then the collection is dropped from every worker."""
    pd, ws, peers = cluster["pd"], cluster["workers"], cluster["peers"]
    g3 = 103
    cfg = coll_config("d", 1, index_mode="async")
    plan = {w.id: list(cluster["plan"][w.id]) +
            [assignment(g3, 0, i + 1, peers, collection="d", config=cfg)]
            for i, w in enumerate(ws)}
    pd.set_plan(plan)
    lead = wait_for("a leader of group 103", lambda: leader_of(ws, g3))
    pts = [("p%d" % i, [i, i, i, i], None) for i in range(300)]
    assert write(lead, g3, pts).upserted == 300
    res = search(lead, g3, [299, 299, 299, 299], linearizable=True, k=1)
    assert res.hits[0].id == b"p299"
    c = lead.call("ShardCount", pb.ShardCountRequest(version=1, shard=ref(g3), linearizable=True),
                  pb.ShardCountResponse)
    assert c.count == 300
    # dropped from the plan: every replica and its directory goes
    pd.set_plan(cluster["plan"])
    for w in ws:
        wait_for("group 103 gone from worker %d" % w.n, lambda w=w: not os.path.exists(
            os.path.join(w.dir, "groups", str(g3))))


class Load:
    """Writes to group 1's leader (following "not the leader") and
    eventual searches on every worker, from two threads, while the group
    changes; counts what succeeded and keeps unexpected errors."""
    EXPECTED = ("FAILED_PRECONDITION", "UNAVAILABLE", "CANCELLED", "ABORTED", "NOT_FOUND",
                "DEADLINE_EXCEEDED")

    def __init__(self, ws):
        self.ws, self.stop, self.writes, self.reads, self.bad = ws, False, 0, 0, []
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self.writer, self.reader)]
        for t in self.threads:
            t.start()

    def err(self, e):
        if e.code().name not in self.EXPECTED:
            self.bad.append("%s: %s" % (e.code().name, e.details()))

    def writer(self):
        target, i = self.ws[0], 0
        by_addr = {w.addr: w for w in self.ws}
        while not self.stop:
            try:
                write(target, G1, [("load%d" % i, [7, 7, 7, i % 100], None)], timeout=5)
                self.writes += 1
                i += 1
            except grpc.RpcError as e:
                self.err(e)
                d = e.details() or ""
                if d.startswith("not the leader; leader: "):
                    target = by_addr.get(d.split(": ")[1].strip(), target)
                else:
                    time.sleep(0.02)

    def reader(self):
        while not self.stop:
            for w in list(self.ws):
                try:
                    search(w, G1, [7, 7, 7, 7], k=2)
                    self.reads += 1
                except grpc.RpcError as e:
                    self.err(e)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(10)
        assert not self.bad, self.bad[:5]
        assert self.writes > 0 and self.reads > 0


def test_add_nonvoter_promote_remove(cluster):
    pd, ws, root = cluster["pd"], cluster["workers"], cluster["root"]
    w4 = Worker(pd, root, 4, role="normal")
    w4.start()
    ws.append(w4)
    load = Load(ws)
    wait_for("worker 4 registered", lambda: w4.id in pd.workers)
    # group 1 gets raft id 4 on worker 4 as a non-voter
    peers1 = cluster["peers"] + [peer(w4, 4, voter=False)]
    peers2 = cluster["peers"]
    def plan_for(p1, w4_voter, drop_w1_g2=False):
        plan = {}
        for i, w in enumerate(ws[:3]):
            a = [assignment(G1, 0, i + 1, p1)]
            if not (drop_w1_g2 and i == 0):
                a.append(assignment(G2, 1, i + 1, p2))
            plan[w.id] = a
        plan[w4.id] = [assignment(G1, 0, 4, p1, voter=w4_voter, bootstrap=False)]
        return plan
    p2 = peers2
    pd.set_plan(plan_for(peers1, False))
    hit = wait_for("worker 4 caught up", lambda: [
        h for h in search(w4, G1, [1, 1, 1, 1.1]).hits if h.id == b"b"], timeout=20)
    assert hit
    assert w4.replica(G1).state == "follower"
    # a write after the join reaches it too
    lead = wait_for("a leader of group 1", lambda: leader_of(ws, G1))
    write(lead, G1, [("d", [3, 3, 3, 3], None)])
    wait_for("the new point on worker 4", lambda: [
        h for h in search(w4, G1, [3, 3, 3, 3]).hits if h.id == b"d"])
    # now a voter: promoted by the leader; then it can be elected
    peers1 = cluster["peers"] + [peer(w4, 4, voter=True)]
    pd.set_plan(plan_for(peers1, True))
    wait_for("promotion logged", lambda: any(
        "group %d: promote raft id 4 done" % G1 in w.logtext() for w in ws[:3]), timeout=20)
    lead = leader_of(ws, G1)
    with pd.lock:
        pd.elect.append((lead.id, pb.Elect(group=G1, raft_id=4)))
    wait_for("worker 4 elected", lambda: w4.replica(G1).state == "leader", timeout=20)
    r = write(w4, G1, [("e", [4, 4, 4, 4], None)])
    assert r.upserted == 1
    load.finish()
    # remove worker 1's replica of group 2: its directory disappears and
    # the group goes on with the other two
    gdir = os.path.join(ws[0].dir, "groups", str(G2))
    assert os.path.isdir(gdir)
    p2 = [peer(w, i + 2) for i, w in enumerate(ws[1:3])]
    pd.set_plan(plan_for(peers1, True, drop_w1_g2=True))
    wait_for("worker 1's replica of group 2 deleted", lambda: not os.path.exists(gdir))
    assert ws[0].replica(G2) is None
    assert "removed c shard 1 (group %d" % G2 in ws[0].logtext()
    lead2 = wait_for("a leader of group 2", lambda: leader_of(ws[1:3], G2))
    wait_for("a write to group 2 after the removal", lambda: write(
        lead2, G2, [("f", [5, 5, 5, 5], None)]).upserted == 1)


def test_sigkill_restart_serves_from_disk(cluster):
    pd, ws = cluster["pd"], cluster["workers"]
    w2 = ws[1]
    w2.kill(signal.SIGKILL)
    with pd.lock:
        pd.refuse.add(w2.id)     # the PD does not answer it for now
    w2.start()
    st = w2.status()
    assert not st.registered
    assert sorted(r.group for r in st.replicas) == [G1, G2]
    assert all(r.epoch == EPOCH for r in st.replicas)
    # it serves its replicas (eventual reads) before the PD answers
    hit = wait_for("worker 2 serves group 1 from disk", lambda: [
        h for h in search(w2, G1, [4, 4, 4, 4]).hits if h.id == b"e"])
    assert hit
    code, msg = rpc_error(lambda: search(w2, G1, [0] * DIM, epoch=EPOCH - 1))
    assert msg == "stale shard epoch: request %d, replica %d" % (EPOCH - 1, EPOCH)
    with pd.lock:
        pd.refuse.discard(w2.id)
    wait_for("worker 2 registered again", lambda: w2.status().registered)
    # a PD that forgot a worker (answers registered = false) gets it back
    w3 = ws[2]
    with pd.lock:
        del pd.workers[w3.id]
    wait_for("worker 3 registered again", lambda: w3.id in pd.workers)
    wait_for("the reason logged", lambda: "registering again" in w3.logtext())
    # and SIGTERM stops a worker cleanly (exit 0), data kept
    w2.kill(signal.SIGTERM)
    assert w2.proc.returncode == 0, w2.logtext()[-2000:]
    assert os.path.exists(os.path.join(w2.dir, "groups", str(G1), "replica.json"))


def test_search_only_refuses_writes(cluster):
    # It knows only a PD follower (and a dead address): it follows the
    # follower's "not the leader; leader: <addr>" to the leader.
    pd = cluster["pd"]
    fol = FollowerPD("127.0.0.1:%d" % pd.port)
    w = Worker(pd, cluster["root"], 5, role="search_only",
               pd_addrs="127.0.0.1:%d,127.0.0.1:%d" % (free_port(), fol.port))
    w.start()
    try:
        wait_for("worker 5 registered", lambda: w.id in cluster["pd"].workers)
        assert fol.calls >= 1
        assert cluster["pd"].workers[w.id].role == pb.SEARCH_ONLY
        code, msg = rpc_error(lambda: write(w, G1, PTS))
        assert (code, msg) == (grpc.StatusCode.FAILED_PRECONDITION, "search-only worker")
        # the PD removes it: it stops with an error
        with pd.lock:
            pd.removed.add(w.id)
            del pd.workers[w.id]
        assert w.proc.wait(timeout=15) == 1
        assert "the PD refuses this worker" in w.logtext()
    finally:
        w.kill(signal.SIGTERM)
        fol.stop()
