"""test_pd.py: `vectron pd` on loopback, driven over its gRPC service
(vectron.internal.v1.PlacementDriver) with message classes protoc generates
at test time. The workers are this test: it registers them and sends their
heartbeats. Every process is killed at the end, also on failure.

Environment (set by tests/cluster/CMakeLists.txt):
  VECTRON_BIN            the vectron binary
  VECTRON_CLUSTER_PROTO  proto/vectron/internal/v1/cluster.proto
  VECTRON_GEN            a directory of the build tree for the generated module
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import grpc
import pytest

BIN = os.environ.get("VECTRON_BIN", "")
PROTO = os.environ.get("VECTRON_CLUSTER_PROTO", "")
GEN = os.environ.get("VECTRON_GEN", "")
SVC = "/vectron.internal.v1.PlacementDriver/"
FP = grpc.StatusCode.FAILED_PRECONDITION


from harness import cpb as pb, free_port  # noqa: E402 (cluster.proto, generated once)

REPLY = {
    "RegisterWorker": pb.RegisterWorkerResponse, "Heartbeat": pb.HeartbeatResponse,
    "CreateCollection": pb.CreateCollectionResponse, "DropCollection": pb.DropCollectionResponse,
    "GetRouting": pb.GetRoutingResponse, "ListWorkers": pb.ListWorkersResponse,
    "SetWorkerState": pb.SetWorkerStateResponse, "Status": pb.StatusResponse,
}


def free_ports(n):
    """n ports outside the ephemeral range (harness.free_port says why)."""
    return [free_port() for _ in range(n)]


def config(name, shards, dim=4):
    """A collection config in lib/coll's encoding (vt_coll_config_encode)."""
    return json.dumps({"version": 1, "name": name, "shard_count": shards, "rescore": True,
                       "oversampling": 2.0, "routing": "range", "dim": dim, "distance": "cosine",
                       "m": 16, "ef_construction": 100, "ef_search": 64, "quant": "none",
                       "index_mode": "sync", "fields": []}, sort_keys=True).encode()


class PD:
    """One `vectron pd` process."""

    def __init__(self, root, nid=1, peers="", extra=()):
        self.nid, self.peers, self.extra = nid, peers, list(extra)
        self.grpc_port, self.raft_port = free_ports(2)
        self.dir = os.path.join(root, "pd%d" % nid)
        self.proc = None
        self.chan = None
        self.log = os.path.join(root, "pd%d.log" % nid)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.grpc_port

    @property
    def raft(self):
        return "127.0.0.1:%d" % self.raft_port

    def start(self):
        args = [BIN, "pd", "--node-id", str(self.nid), "--data-dir", self.dir,
                "--listen", self.addr, "--raft-listen", self.raft,
                "--peers", self.peers] + self.extra
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.logf)
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline()
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(20)
        assert line[0] and b"vectron pd:" in line[0], "pd %d did not start: %s" % (
            self.nid, open(self.log).read()[-2000:])
        # keep draining stdout so the process never blocks on it
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.chan = grpc.insecure_channel(self.addr)

    def call(self, method, req, timeout=10):
        fn = self.chan.unary_unary(SVC + method, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=REPLY[method].FromString)
        return fn(req, timeout=timeout)

    def status(self):
        return self.call("Status", pb.StatusRequest(version=1), timeout=3)

    def kill(self, sig=signal.SIGKILL):
        if self.chan:
            self.chan.close()
            self.chan = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        return self.proc.returncode if self.proc else None


@pytest.fixture
def cluster():
    root = tempfile.mkdtemp(prefix="vt_pd_")
    nodes = []
    yield root, nodes
    for n in nodes:
        n.kill()
    if os.environ.get("VT_KEEP"):
        print("kept", root)
    else:
        shutil.rmtree(root, ignore_errors=True)


def wait_for(fn, timeout, what):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except grpc.RpcError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last error: %s)" % (what, last))


def err_of(fn):
    with pytest.raises(grpc.RpcError) as ei:
        fn()
    return ei.value.code(), ei.value.details()


def worker(i, **kw):
    return pb.WorkerInfo(id=i, addr="127.0.0.1:%d" % (11000 + i),
                         raft_addr="127.0.0.1:%d" % (12000 + i), **kw)


def register(pd, i):
    return pd.call("RegisterWorker", pb.RegisterWorkerRequest(version=1, worker=worker(i)))


def create(pd, name, shards, rf, **kw):
    return pd.call("CreateCollection", pb.CreateCollectionRequest(
        version=1, name=name, config=config(name, shards), shard_count=shards, rf=rf, **kw))


def routing(pd, name=None):
    req = pb.GetRoutingRequest(version=1)
    if name is not None:
        req.name = name
    return pd.call("GetRouting", req)


# ---- one node -----------------------------------------------------------------

def test_one_node(cluster):
    root, nodes = cluster
    # no reconciliation here: the test checks answers, not repairs
    pd = PD(root, extra=["--reconcile-ms", "3600000", "--heartbeat-grace-ms", "60000"])
    nodes.append(pd)
    pd.start()
    wait_for(lambda: pd.status().leader, 10, "leadership")

    code, msg = err_of(lambda: pd.call("Status", pb.StatusRequest(version=2)))
    assert code == FP and msg == "protocol version 2, this node speaks 1"
    code, msg = err_of(lambda: pd.call("ListWorkers", pb.ListWorkersRequest()))
    assert code == FP and msg == "protocol version 0, this node speaks 1"

    epochs = [register(pd, i).epoch for i in (1, 2, 3)]
    assert epochs == sorted(epochs) and len(set(epochs)) == 3
    assert register(pd, 2).epoch == epochs[2]  # re-registering as it was: no change

    route = create(pd, "c1", 4, 3).collection
    assert route.name == "c1" and route.shard_count == 4 and route.rf == 3
    assert route.config == config("c1", 4)
    assert len(route.shards) == 4
    for s in route.shards:
        ws = [r.worker for r in s.replicas]
        assert len(set(ws)) == 3, s
        assert [r.raft_id for r in s.replicas] == [1, 2, 3]
        assert all(r.role == pb.VOTER for r in s.replicas)
        for r in s.replicas:
            assert r.addr == "127.0.0.1:%d" % (11000 + r.worker)
            assert r.raft_addr == "127.0.0.1:%d" % (12000 + r.worker)
    assert route.shards[0].key_lo == 0 and route.shards[-1].key_hi == 2**64 - 1

    got = routing(pd, "c1")
    assert got.collections[0] == route
    everything = routing(pd)
    assert [c.name for c in everything.collections] == ["c1"]
    lw = pd.call("ListWorkers", pb.ListWorkersRequest(version=1))
    assert [w.id for w in lw.workers] == [1, 2, 3]
    for w in lw.workers:
        assert w.replicas == sum(1 for s in route.shards for r in s.replicas if r.worker == w.id)
        assert w.raft_addr == "127.0.0.1:%d" % (12000 + w.id) and w.state == pb.UP
        assert not w.alive and w.last_beat_ms_ago == 0  # never heard

    hb = pd.call("Heartbeat", pb.HeartbeatRequest(version=1, worker=1, known_epoch=0))
    assert hb.registered and not hb.unchanged and hb.epoch == everything.epoch
    mine = [(s.index, r) for s in route.shards for r in s.replicas if r.worker == 1]
    assert len(hb.assignments) == len(mine)
    for a in hb.assignments:
        s = route.shards[a.shard]
        r = [x for x in s.replicas if x.worker == 1][0]
        assert a.collection == "c1" and a.group == s.group and a.epoch == s.epoch
        assert a.raft_id == r.raft_id and a.role == pb.VOTER and a.bootstrap and a.rf == 3
        assert list(a.peers) == list(s.replicas) and a.config == route.config
    hb2 = pd.call("Heartbeat", pb.HeartbeatRequest(version=1, worker=1, known_epoch=hb.epoch))
    assert hb2.registered and hb2.unchanged and not hb2.assignments
    lw = pd.call("ListWorkers", pb.ListWorkersRequest(version=1))
    assert lw.workers[0].alive and lw.workers[0].last_beat_ms_ago >= 1
    hb = pd.call("Heartbeat", pb.HeartbeatRequest(version=1, worker=99))
    assert not hb.registered

    # bad inputs
    def bad(method, req, want_code, want_text):
        code, msg = err_of(lambda: pd.call(method, req))
        assert code == want_code and want_text in msg, (method, code, msg)
    IA = grpc.StatusCode.INVALID_ARGUMENT
    C = pb.CreateCollectionRequest
    bad("CreateCollection", C(version=1, name="bad name", config=config("x", 1), shard_count=1),
        IA, "name")
    bad("CreateCollection", C(version=1, name="x", config=config("x", 1), shard_count=0), IA,
        "shard_count")
    bad("CreateCollection", C(version=1, name="x", config=config("x", 1), shard_count=1, rf=8),
        IA, "rf")
    bad("CreateCollection", C(version=1, name="x", config=b"{", shard_count=1), IA, "config")
    bad("CreateCollection", C(version=1, name="x", config=config("y", 1), shard_count=1), IA,
        "config")
    bad("CreateCollection", C(version=1, name="x", config=config("x", 1), shard_count=1, rf=4),
        FP, "workers")
    bad("CreateCollection", C(version=1, name="c1", config=config("c1", 4), shard_count=4, rf=2),
        grpc.StatusCode.ALREADY_EXISTS, "exists")
    # the very same create again (a retry) gets the collection
    assert create(pd, "c1", 4, 3).collection == routing(pd, "c1").collections[0]
    bad("GetRouting", pb.GetRoutingRequest(version=1, name="nope"), grpc.StatusCode.NOT_FOUND,
        "nope")
    bad("DropCollection", pb.DropCollectionRequest(version=1, name="nope"),
        grpc.StatusCode.NOT_FOUND, "nope")
    bad("RegisterWorker", pb.RegisterWorkerRequest(version=1, worker=pb.WorkerInfo(id=0)), IA,
        "worker.id")
    bad("RegisterWorker", pb.RegisterWorkerRequest(version=1, worker=pb.WorkerInfo(
        id=5, addr="a,b:1", raft_addr="h:2")), IA, "worker.addr")
    bad("RegisterWorker", pb.RegisterWorkerRequest(version=1, worker=pb.WorkerInfo(
        id=5, addr="h:1")), IA, "worker.raft_addr")
    bad("Heartbeat", pb.HeartbeatRequest(version=1), IA, "worker")
    bad("SetWorkerState", pb.SetWorkerStateRequest(version=1, worker=1, state=pb.REMOVED), FP,
        "still hosts")
    bad("SetWorkerState", pb.SetWorkerStateRequest(version=1, worker=42, state=pb.DRAINING),
        grpc.StatusCode.NOT_FOUND, "42")

    # drain and undrain; drop
    e = pd.call("SetWorkerState", pb.SetWorkerStateRequest(version=1, worker=3,
                                                           state=pb.DRAINING)).epoch
    lw = pd.call("ListWorkers", pb.ListWorkersRequest(version=1))
    assert lw.workers[2].state == pb.DRAINING and lw.epoch == e
    pd.call("SetWorkerState", pb.SetWorkerStateRequest(version=1, worker=3, state=pb.UP))
    create(pd, "c2", 1, 1)
    assert pd.call("DropCollection", pb.DropCollectionRequest(version=1, name="c2")).dropped
    assert [c.name for c in routing(pd).collections] == ["c1"]

    # a clean stop, and a restart keeps the metadata (log + snapshots)
    st = pd.status()
    assert pd.kill(signal.SIGTERM) == 0
    pd.start()
    wait_for(lambda: pd.status().leader, 10, "leadership after restart")
    assert routing(pd, "c1").collections[0] == route
    assert pd.status().epoch == st.epoch


# ---- three nodes ---------------------------------------------------------------

def test_three_nodes(cluster):
    root, nodes = cluster
    for i in (1, 2, 3):
        nodes.append(PD(root, nid=i, extra=["--reconcile-ms", "3600000"]))
    peers = ",".join("%d=%s/%s" % (n.nid, n.addr, n.raft) for n in nodes)
    for n in nodes:
        n.peers = peers
        n.start()

    def find_leader(among):
        for n in among:
            try:
                if n.status().leader:
                    return n
            except grpc.RpcError:
                pass
        return None
    leader = wait_for(lambda: find_leader(nodes), 15, "a PD leader")
    follower = [n for n in nodes if n is not leader][0]
    wait_for(lambda: follower.status().leader_addr == leader.addr, 10, "the follower to know")
    code, msg = err_of(lambda: register(follower, 1))
    assert code == FP and msg == "not the leader; leader: " + leader.addr
    assert follower.status().leader_addr == leader.addr

    for i in (1, 2, 3):
        register(leader, i)
    r1 = create(leader, "c1", 2, 3).collection

    t0 = time.time()
    leader.kill(signal.SIGKILL)
    rest = [n for n in nodes if n is not leader]
    new = wait_for(lambda: find_leader(rest), 10, "a new PD leader")
    print("new leader in %.2f s" % (time.time() - t0))
    wait_for(lambda: create(new, "c2", 1, 3), 10, "a create on the new leader")
    names = [c.name for c in routing(new).collections]
    assert names == ["c1", "c2"]
    assert routing(new, "c1").collections[0] == r1
    other = [n for n in rest if n is not new][0]
    code, msg = err_of(lambda: routing(other))
    assert code == FP and msg == "not the leader; leader: " + new.addr

    # the killed node restarts from its log and catches up as a follower
    leader.start()
    want = new.status().applied
    wait_for(lambda: leader.status().applied >= want, 15, "the restarted node to catch up")
    st = leader.status()
    assert not st.leader and st.leader_addr == new.addr and st.epoch == new.status().epoch


# ---- reconciliation ---------------------------------------------------------------

class Workers:
    """Fake workers: each live one heartbeats every 100 ms with reports for
    the replicas the PD assigned it (term 1; raft id 1 claims leadership,
    except in `silent` groups, where only a replica the PD ordered elected
    does; voters are caught up, a non-voter once `catch_up` says so)."""

    def __init__(self, pd, ids):
        self.pd, self.ids = pd, list(ids)
        self.live = set(ids)
        self.known = {i: 0 for i in ids}
        self.assign = {i: [] for i in ids}
        self.catch_up = set()
        self.silent = set()
        self.elected = {}  # group -> raft id the PD asked for
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def beat(self, w):
        with self.lock:
            reps = [pb.ReplicaReport(group=a.group, term=1, leader=self.leads(a),
                                     caught_up=a.role == pb.VOTER or w in self.catch_up)
                    for a in self.assign[w]]
            known = self.known[w]
        hb = self.pd.call("Heartbeat", pb.HeartbeatRequest(version=1, worker=w, known_epoch=known,
                                                           replicas=reps), timeout=3)
        with self.lock:
            for e in hb.elect:
                self.elected[e.group] = e.raft_id
            if not hb.unchanged:
                self.assign[w] = list(hb.assignments)
                self.known[w] = hb.epoch

    def leads(self, a):
        if a.group in self.silent:
            return self.elected.get(a.group) == a.raft_id
        return a.raft_id == 1

    def run(self):
        while not self.stop.is_set():
            for w in self.ids:
                if w in self.live:
                    try:
                        self.beat(w)
                    except grpc.RpcError:
                        pass
            time.sleep(0.1)


def test_reconcile(cluster):
    root, nodes = cluster
    mport = free_port()
    pd = PD(root, extra=["--heartbeat-grace-ms", "1500", "--reconcile-ms", "200",
                         "--log-level", "debug", "--metrics-listen", "127.0.0.1:%d" % mport])
    nodes.append(pd)
    pd.start()
    wait_for(lambda: pd.status().leader, 10, "leadership")
    for i in (1, 2, 3, 4):
        register(pd, i)
    route = create(pd, "c", 1, 3).collection
    shard = route.shards[0]
    hosts = {r.worker: r.raft_id for r in shard.replicas}
    spare = [w for w in (1, 2, 3, 4) if w not in hosts][0]
    victim = [w for w, rid in hosts.items() if rid == 2][0]
    # a shard nobody leads: the PD orders an election through heartbeats
    quiet = create(pd, "quiet", 1, 3).collection.shards[0]
    ws = Workers(pd, (1, 2, 3, 4))
    ws.silent.add(quiet.group)
    ws.t.start()
    try:
        leader_w = [w for w, rid in hosts.items() if rid == 1][0]
        wait_for(lambda: routing(pd, "c").collections[0].shards[0].leader == leader_w, 5,
                 "the leader hint from the reports")
        rid = wait_for(lambda: ws.elected.get(quiet.group), 5, "an Elect for the quiet shard")
        assert rid in [r.raft_id for r in quiet.replicas]
        elected_w = [r.worker for r in quiet.replicas if r.raft_id == rid][0]
        wait_for(lambda: routing(pd, "quiet").collections[0].shards[0].leader == elected_w, 5,
                 "the elected replica's leadership in the hint")
        ws.live.discard(victim)
        t0 = time.time()

        def replica(w):
            reps = [r for r in routing(pd, "c").collections[0].shards[0].replicas if r.worker == w]
            return reps[0] if reps else None
        r = wait_for(lambda: replica(spare), 10, "a replica on the spare worker")
        assert time.time() - t0 >= 1.4, "replaced before the grace period"
        assert r.role == pb.NONVOTER and r.raft_id == 4
        a = wait_for(lambda: [x for x in ws.assign[spare] if x.group == shard.group], 5,
                     "the spare worker's assignment")[0]
        assert a.role == pb.NONVOTER and not a.bootstrap and a.raft_id == 4
        assert {p.worker for p in a.peers} == set(hosts) | {spare}

        ws.catch_up.add(spare)
        wait_for(lambda: replica(spare).role == pb.VOTER, 10, "the promotion")
        ws.catch_up.update(ws.ids)  # quiet's new replica (on another worker) too
        wait_for(lambda: replica(victim) is None, 10, "the dead replica's removal")
        for name in ("c", "quiet"):
            final = routing(pd, name).collections[0].shards[0]
            wait_for(lambda: victim not in [x.worker for x in
                                            routing(pd, name).collections[0].shards[0].replicas],
                     10, "%s without the dead worker" % name)
            final = routing(pd, name).collections[0].shards[0]
            assert len(final.replicas) == 3 and all(x.role == pb.VOTER for x in final.replicas)

        def kinds():
            return [(x.kind, x.worker) for x in pd.status().recent_actions if x.outcome.startswith("ok")]
        wait_for(lambda: ("remove_worker", victim) in kinds(), 10, "the dead worker's removal")
        acts = pd.status().recent_actions
        seen = {x.kind: x for x in acts if x.outcome.startswith("ok")}
        for k in ("elect", "set_leader", "add_replica", "promote", "remove_replica",
                  "remove_worker"):
            assert k in seen, [(x.kind, x.outcome) for x in acts]
            assert seen[k].reason and seen[k].at_ms > 0
        assert ("add_replica", spare) in kinds() and ("remove_replica", victim) in kinds()
        elects = [x for x in acts if x.kind == "elect"]
        # an order still waiting for its heartbeat is not repeated every pass
        assert "quiet" in [x.collection for x in elects] and len(elects) < 5, elects
        lw = pd.call("ListWorkers", pb.ListWorkersRequest(version=1))
        st = {w.id: w for w in lw.workers}
        assert st[victim].state == pb.REMOVED and not st[victim].alive
        hb = pd.call("Heartbeat", pb.HeartbeatRequest(version=1, worker=victim))
        assert not hb.registered
        # a removed worker that comes back is told so (it stops), and its
        # tries leave nothing in the PD's log
        applied = pd.status().applied
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as ei:
                register(pd, victim)
            assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "worker %d was removed" % victim in ei.value.details()
        assert pd.status().applied - applied < 3  # not one entry per try
        # the same story in the PD's metrics
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
        metrics = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                metrics[k] = float(v)
        assert metrics["vectron_pd_leader"] == 1
        assert metrics['vectron_pd_workers{state="removed"}'] == 1
        assert metrics["vectron_pd_collections"] == 2 and metrics["vectron_pd_shards"] == 2
        assert metrics["vectron_pd_shards_under_replicated"] == 0
        assert metrics["vectron_pd_reconcile_passes_total"] > 0
        for k in ("add_replica", "promote", "remove_replica", "remove_worker", "elect"):
            assert metrics['vectron_pd_actions_total{kind="%s",outcome="ok"}' % k] >= 1, k
    finally:
        ws.stop.set()
        ws.t.join(5)
    log = open(pd.log).read()
    assert "add_replica c/0 worker %d" % spare in log
