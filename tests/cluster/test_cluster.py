"""test_cluster.py: the whole cluster as real processes on loopback: 3
placement driver nodes, workers and a gateway, driven through the public
API exactly as `vectron serve` is.

- A Fashion-MNIST subset ingested through the gateway into 4 shards with
  replication factor 3 answers searches with the same ids and scores as
  `vectron serve` holding the same data.
- SIGKILL of a worker: reads and writes go on (other replicas, new
  leaders), and the reconciliation loop restores three voters per shard
  on the remaining workers.
- SIGKILL of the PD leader: a new one is elected; collections can still
  be created and the old ones are still there.
- A new worker joins: replicas move to it while reads and writes go on
  without an error the client would have to handle.
- A search-only worker holds non-voting replicas and serves searches.
- A gateway whose cached routing went stale (leaders moved) retries and
  answers.
"""
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from vtclient import ApiError, Grpc, Rest, pb  # noqa: E402

from harness import BIN, TIME_SCALE, Cluster, Proc, cpb, wait_for  # noqa: E402

DIR = "/usr/share/datasets/fashion-mnist"
N_BASE, N_QUERY, K = 2000, 40, 10


def idx_images(path, n):
    with gzip.open(path, "rb") as f:
        hdr = f.read(16)
        count = int.from_bytes(hdr[4:8], "big")
        assert int.from_bytes(hdr[:4], "big") == 0x803 and count >= n
        data = np.frombuffer(f.read(n * 784), dtype=np.uint8)
    return data.reshape(n, 784).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    train = os.path.join(DIR, "train-images-idx3-ubyte.gz")
    test = os.path.join(DIR, "t10k-images-idx3-ubyte.gz")
    if not (os.path.exists(train) and os.path.exists(test)):
        pytest.fail("install Debian's dataset-fashion-mnist (make deps): %s missing" % DIR)
    return idx_images(train, N_BASE), idx_images(test, N_QUERY)


@pytest.fixture(scope="module")
def root():
    d = tempfile.mkdtemp(prefix="vt-cluster-")
    yield d
    if os.environ.get("VECTRON_TEST_KEEP"):
        print("kept %s" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(root):
    c = Cluster(root, n_pd=3, n_workers=3)
    yield c
    dead = [p.name for p in c.gateways + c.workers + c.pds
            if p.proc is not None and p.proc.poll() is not None]
    bad = c.close()
    assert not dead, "processes died during the tests: %s" % dead
    logs = "\n".join("--- %s:\n%s" % (p.name, p.log_text()[-4000:])
                     for p in c.gateways + c.workers + c.pds if p.name in bad)
    assert not bad, "processes did not stop cleanly: %s\n%s" % (bad, logs)


@pytest.fixture(scope="module")
def gw(cluster):
    return cluster.add_gateway(["--replication-factor", "3", "--routing-ttl-ms", "600000"])


def ingest(g, name, base, lo=0, hi=None, batch=500):
    hi = len(base) if hi is None else hi
    for a in range(lo, hi, batch):
        req = pb.UpsertRequest(collection=name)
        for i in range(a, min(hi, a + batch)):
            req.points.add(id=str(i), vector=base[i], payload='{"i":%d}' % i)
        assert g.raw("Upsert", req, timeout=120).upserted == min(hi, a + batch) - a


def search_ids(g, name, q, exact=False, strong=False):
    req = pb.SearchRequest(collection=name, vector=q, top_k=K, exact=exact, with_payload=False)
    if strong:
        req.consistency = pb.STRONG
    res = g.raw("Search", req, timeout=120).results
    return [(x.id, round(x.score, 3)) for x in res]


def voters_ok(cluster, name, rf, dead=()):
    """Every shard has rf voters, none on a dead worker, and a leader."""
    r = cluster.routing(name)
    for s in r.shards:
        voters = [p for p in s.replicas if p.role == cpb.VOTER]
        if len(voters) != rf or any(p.worker in dead for p in voters) or not s.leader \
                or s.leader in dead:
            return False
    return True


def test_same_answers_as_serve(cluster, gw, data, root):
    base, queries = data
    g = Grpc(gw)
    g.call("CreateCollection", {"name": "fm", "dimension": 784, "distance": "euclid",
                                "shard_count": 4})
    r = cluster.routing("fm")
    assert len(r.shards) == 4 and r.rf == 3
    for s in r.shards:
        assert len({p.worker for p in s.replicas}) == 3
    ingest(g, "fm", base)
    assert g.call("Count", {"collection": "fm"})["count"] == N_BASE

    # vectron serve with the same data, the same shard count
    srv = Proc("serve", root, "serve",
               ["--data-dir", os.path.join(root, "serve-data"), "--rest-port", "0",
                "--grpc-port", "0", "--threads", "2"]).start(
        r"vectron serve: REST on http://[\d.]+:(\d+), gRPC on [\d.]+:(\d+)")
    try:
        srv.rest_url, srv.grpc_port = "http://127.0.0.1:" + srv.first.group(1), int(srv.first.group(2))
        s = Grpc(srv)
        s.call("CreateCollection", {"name": "fm", "dimension": 784, "distance": "euclid",
                                    "shard_count": 4})
        ingest(s, "fm", base)
        same = 0
        for q in queries:
            assert search_ids(g, "fm", q, exact=True) == search_ids(s, "fm", q, exact=True)
            same += search_ids(g, "fm", q) == search_ids(s, "fm", q)
        # HNSW graphs are built from the same points per shard, but parallel
        # inserts make them differ slightly between two processes (serve
        # against itself differs as much: docs/benchmarks.md, "Cluster")
        assert same >= 0.9 * N_QUERY, same
        # 4 shards on 3 workers: some worker answered for two shards in one call
        assert gw_metric(gw, "vectron_gateway_multi_shard_calls_total") > 0
        # REST through the gateway too, and a get and a scroll page
        rest = Rest(gw)
        got = rest.call("Get", {"collection": "fm", "ids": ["5", "1999", "nope"]})
        assert [str(p["id"]) for p in got["points"]] == ["5", "1999"]  # _norm makes ints
        page = rest.call("Scroll", {"collection": "fm", "limit": 100})
        assert len(page["points"]) == 100 and page.get("next_cursor")
        # serve is the same roles in one process: one worker, the cluster
        # routes answer as a gateway's do
        ws = requests.get(srv.rest_url + "/v1/cluster/workers", timeout=10).json()["workers"]
        assert len(ws) == 1 and ws[0]["alive"] and ws[0]["addr"].startswith("127.0.0.1:")
        fm = requests.get(srv.rest_url + "/v1/cluster/collections/fm", timeout=10).json()
        assert len(fm["collections"][0]["shards"]) == 4
        assert srv.stop() == 0
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.kill()  # a failed assertion must not leave it running
    s.close()
    g.close()


def test_worker_kill_heals(cluster, gw, data):
    base, queries = data
    g = Grpc(gw)
    w4 = cluster.add_worker()
    victim = cluster.workers[0]
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            try:
                search_ids(g, "fm", queries[0])
            except ApiError as e:
                errors.append(e)
            time.sleep(0.05)

    t = threading.Thread(target=reader)
    t.start()
    try:
        victim.kill()
        # writes wait for new leaders inside the gateway's retry window
        ingest(g, "fm", base, 0, 200)
        wait_for("three live voters per shard again",
                 lambda: voters_ok(cluster, "fm", 3, dead={victim.wid}), timeout=60, every=0.5)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:3]
    assert any(x.id == w4.wid and x.replicas > 0 for x in cluster.workers_info())
    assert g.call("Count", {"collection": "fm"})["count"] == N_BASE
    g.close()


def test_pd_leader_kill(cluster, gw):
    g = Grpc(gw)
    old = cluster.leader()
    old.kill()
    g.call("CreateCollection", {"name": "after_pd_kill", "dimension": 4, "distance": "dot",
                                "shard_count": 2})
    names = {c["name"] for c in g.call("ListCollections")["collections"]}
    assert {"fm", "after_pd_kill"} <= names
    assert cluster.leader() is not old
    old.start()  # rejoins as a follower
    wait_for("the old leader back as a follower",
             lambda: old.status().leader_addr and not old.status().leader, timeout=30)
    g.call("DeleteCollection", {"name": "after_pd_kill"})
    g.close()


def test_new_worker_takes_replicas_under_load(cluster, gw, data):
    base, queries = data
    g = Grpc(gw)
    stop = threading.Event()
    errors = []

    def load():
        i = 0
        while not stop.is_set():
            try:
                search_ids(g, "fm", queries[i % N_QUERY])
                ingest(g, "fm", base, (i * 10) % N_BASE, (i * 10) % N_BASE + 10)
            except ApiError as e:
                errors.append(e)
            i += 1

    t = threading.Thread(target=load)
    t.start()
    try:
        w = cluster.add_worker()
        wait_for("the new worker hosts replicas",
                 lambda: any(x.id == w.wid and x.replicas > 0 for x in cluster.workers_info()),
                 timeout=90, every=0.5)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:3]
    assert g.call("Count", {"collection": "fm"})["count"] == N_BASE
    g.close()


def test_search_only_worker(cluster, data):
    base, queries = data
    so = cluster.add_worker(["--role", "search_only"])
    g2 = cluster.add_gateway(["--replication-factor", "2", "--search-replicas", "1",
                              "--prefer-search-only", "1"])
    g = Grpc(g2)
    g.call("CreateCollection", {"name": "so", "dimension": 784, "distance": "euclid",
                                "shard_count": 2})
    r = cluster.routing("so")
    for s in r.shards:
        roles = {p.worker: p.role for p in s.replicas}
        assert roles.get(so.wid) == cpb.NONVOTER, roles
    ingest(g, "so", base, 0, 500)
    # the search-only replicas catch up and serve
    wait_for("search-only replicas caught up",
             lambda: sum(rp.points for rp in so.status().replicas) == 500, timeout=30)
    assert len(search_ids(g, "so", queries[0])) == K
    g.call("DeleteCollection", {"name": "so"})
    g.close()


def vectron_cluster(cluster, *args):
    """`vectron cluster --pd <every PD node> ARGS`: its stdout (it must
    succeed)."""
    r = subprocess.run([BIN, "cluster", "--pd", cluster.pd_addrs] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def gw_metric(g, name):
    text = requests.get(g.rest_url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("%s not in /metrics" % name)


def test_stale_routing_retries(cluster, data):
    """A gateway that cached a routing (TTL 10 min) before replicas moved:
    its shard epochs are stale, and its requests refresh the routing and
    succeed."""
    base, queries = data
    g3 = cluster.add_gateway(["--routing-ttl-ms", "600000"])
    g = Grpc(g3)
    want = search_ids(g, "fm", queries[2], strong=True)
    fetched = gw_metric(g3, "vectron_gateway_routing_fetches_total")
    # move replicas: drain the worker that leads shard 0
    lead = cluster.routing("fm").shards[0].leader
    # through the operator's command, which also shows the cluster
    assert "draining" in vectron_cluster(cluster, "drain", str(lead))
    workers = vectron_cluster(cluster, "workers")
    assert re.search(r"^%d\s.*draining" % lead, workers, re.M), workers
    shards = vectron_cluster(cluster, "collections", "fm")
    assert "fm: 4 shards, rf 3" in shards and shards.count("  shard ") == 4, shards
    assert "pd node" in vectron_cluster(cluster, "status")
    wait_for("worker %d drained" % lead,
             lambda: any(x.id == lead and x.replicas == 0 for x in cluster.workers_info())
             and voters_ok(cluster, "fm", 3, dead={lead}), timeout=90, every=0.5)
    assert search_ids(g, "fm", queries[2], strong=True) == want
    ingest(g, "fm", base, 0, 50)
    assert gw_metric(g3, "vectron_gateway_routing_fetches_total") > fetched
    assert " up" in vectron_cluster(cluster, "undrain", str(lead))
    g.close()


def test_gateway_cluster_routes(cluster, gw):
    """The gateway's management routes: workers, placement, PD status."""
    get = lambda path: requests.get(gw.rest_url + path, timeout=30).json()
    ws = get("/v1/cluster/workers")["workers"]
    assert {w["id"] for w in ws} >= {w.wid for w in cluster.workers if w.alive()}
    assert all("addr" in w and "alive" in w for w in ws)
    fm = get("/v1/cluster/collections/fm")["collections"][0]
    assert fm["name"] == "fm" and len(fm["shards"]) == 4
    assert all(s.get("leader") and len(s["replicas"]) >= 3 for s in fm["shards"])
    assert "fm" in {c["name"] for c in get("/v1/cluster/collections")["collections"]}
    st = get("/v1/cluster/status")
    assert st["leader"] is True and st["epoch"] > 0
    r = requests.get(gw.rest_url + "/v1/cluster/collections/nope", timeout=30)
    assert r.status_code == 404, r.text


def test_partial_results(cluster, gw, data):
    """Every replica of a shard is gone: a search fails (naming the
    shard's trouble) unless partial results are allowed, and then the
    shards that still have a replica answer and the missing ones are named,
    within the search's deadline. The last test: it kills workers."""
    base, queries = data
    g = Grpc(gw)
    # rebalancing may still move replicas: wait until the epoch rests
    seen = {"epoch": -1, "since": time.monotonic()}

    def settled():
        e = cluster.pd_call("ListWorkers", cpb.ListWorkersRequest(version=1),
                            cpb.ListWorkersResponse).epoch
        if e != seen["epoch"]:
            seen["epoch"], seen["since"] = e, time.monotonic()
        return time.monotonic() - seen["since"] > 3 * TIME_SCALE
    wait_for("placement at rest", settled, timeout=120, every=0.3)
    r = cluster.routing("fm")
    victims = {p.worker for p in r.shards[1].replicas}
    dead = {s.index for s in r.shards if {p.worker for p in s.replicas} <= victims}
    for w in cluster.workers:
        if w.wid in victims:
            w.kill()
    req = pb.SearchRequest(collection="fm", vector=queries[3], top_k=K, with_payload=False,
                           timeout_ms=int(3000 * TIME_SCALE))
    with pytest.raises(ApiError):
        g.raw("Search", req, timeout=60)
    req.allow_partial = True
    if dead == {s.index for s in r.shards}:  # nothing left: an error either way
        with pytest.raises(ApiError):
            g.raw("Search", req, timeout=60)
        return
    t0 = time.monotonic()
    res = g.raw("Search", req, timeout=60)
    assert time.monotonic() - t0 < 10 * TIME_SCALE
    assert set(res.missing_shards) == dead
    assert len(res.results) == K
    g.close()
