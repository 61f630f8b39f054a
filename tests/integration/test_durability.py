"""test_durability.py: concurrent clients on both transports; SIGTERM and
a restart on the same data keep every point and give the same search
results; SIGKILL after acknowledged upserts loses none of them."""
import os
import signal
import threading

import numpy as np
import requests

from conftest import ApiError, Grpc, Rest, expect_error, pb, uniq

DIM = 16


def upsert_grpc(g, name, ids, v):
    req = pb.UpsertRequest(collection=name)
    for i, row in zip(ids, v):
        req.points.add(id=i, vector=row, payload='{"n": %d}' % len(i))
    return g.raw("Upsert", req)


def test_concurrent_clients(make_server):
    srv = make_server()
    name = uniq("conc")
    Rest(srv).call("CreateCollection", {"name": name, "dimension": DIM, "distance": "cosine"})
    rng = np.random.default_rng(21)
    v = rng.standard_normal((8 * 20 * 25, DIM)).astype(np.float32)
    errors, created, searches = [], [0], [0]
    lock = threading.Lock()

    def worker(k):
        c = Rest(srv) if k % 2 else Grpc(srv)
        try:
            for j in range(20):
                lo = (k * 20 + j) * 25
                pts = [{"id": "c%d" % i, "vector": [float(x) for x in v[i]]} for i in range(lo, lo + 25)]
                r = c.call("Upsert", {"collection": name, "points": pts})
                assert r["upserted"] == 25
                res = c.call("Search", {"collection": name, "vector": pts[0]["vector"], "top_k": 5})
                assert res["results"][0]["id"] == pts[0]["id"], res  # its own write is visible
                with lock:
                    created[0] += r.get("created", 0)
                    searches[0] += 1
        except (ApiError, AssertionError) as e:
            with lock:
                errors.append(repr(e))
        finally:
            if k % 2 == 0:
                c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    [t.start() for t in ts]
    [t.join(240) for t in ts]
    assert not errors, errors[:5]
    assert created[0] == 4000 and searches[0] == 160
    rest = Rest(srv)
    assert rest.call("Count", {"collection": name})["count"] == 4000
    st = rest.call("GetCollection", {"name": name})["status"]
    assert st["points"] == 4000 and st["indexed_points"] == 4000
    assert sum(s["points"] for s in st["shards"]) == 4000 and all(s["points"] for s in st["shards"])


def test_restart_keeps_data(make_server):
    srv = make_server()
    g = Grpc(srv)
    name = uniq("rst")
    g.call("CreateCollection", {"name": name, "dimension": DIM, "distance": "euclid",
                                "indexed_fields": [{"path": "n", "type": "INTEGER"}]})
    rng = np.random.default_rng(22)
    v = rng.standard_normal((3000, DIM)).astype(np.float32)
    for lo in range(0, 3000, 1000):
        upsert_grpc(g, name, ["r%d" % i for i in range(lo, lo + 1000)], v[lo:lo + 1000])
    g.call("Delete", {"collection": name, "ids": ["r0", "r1", "r2"]})
    g.call("SetPayload", {"collection": name, "ids": ["r5"], "payload": {"kept": True}, "merge": True})
    qs = rng.standard_normal((10, DIM)).astype(np.float32)

    def snapshot(c):
        out = []
        for q in qs:
            qv = [float(x) for x in q]
            for exact in (True, False):
                r = c.call("Search", {"collection": name, "vector": qv, "top_k": 10, "exact": exact})
                out.append([(x["id"], round(x["score"], 4)) for x in r["results"]])
        out.append(c.call("Count", {"collection": name})["count"])
        out.append(c.call("Get", {"collection": name, "ids": ["r5", "r0"]})["points"])
        return out

    before = snapshot(g)
    info = g.call("GetCollection", {"name": name})
    g.close()
    assert srv.stop(signal.SIGTERM) == 0, srv.log_text()
    srv.start()
    g = Grpc(srv)
    after = snapshot(g)
    assert after == before
    info2 = g.call("GetCollection", {"name": name})
    for k in ("dimension", "distance", "shard_count", "indexed_fields", "hnsw"):
        assert info2[k] == info[k], k
    assert info2["status"]["points"] == 2997
    # and it still takes writes
    upsert_grpc(g, name, ["new"], v[:1])
    assert g.call("Count", {"collection": name})["count"] == 2998
    g.close()


def test_sigkill_loses_nothing_acknowledged(make_server):
    srv = make_server()
    name = uniq("kill")
    Rest(srv).call("CreateCollection", {"name": name, "dimension": DIM, "distance": "dot"})
    name_async = uniq("killasync")
    Rest(srv).call("CreateCollection", {"name": name_async, "dimension": DIM, "distance": "dot",
                                        "index_mode": "async"})
    rng = np.random.default_rng(23)
    v = rng.standard_normal((12000, DIM)).astype(np.float32)
    acked = {name: [], name_async: []}
    stop = threading.Event()
    lock = threading.Lock()

    def writer(k, coll):
        c = Grpc(srv)
        j = 0
        while not stop.is_set():
            lo = (k * 1000 + j * 50) % 12000
            ids = ["k%d_%d_%d" % (k, j, i) for i in range(50)]
            try:
                upsert_grpc(c, coll, ids, v[lo:lo + 50])
            except ApiError:
                break  # the kill
            with lock:
                acked[coll].extend(ids)
            j += 1
        c.close()

    ts = [threading.Thread(target=writer, args=(k, name if k < 2 else name_async)) for k in range(4)]
    [t.start() for t in ts]
    # kill -9 once some writes are acknowledged, while others are in flight
    while True:
        with lock:
            if min(len(x) for x in acked.values()) >= 1000:
                break
        threading.Event().wait(0.01)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    [t.join(60) for t in ts]
    srv.proc = None
    srv.start()
    rest = Rest(srv)
    for coll, ids in acked.items():
        got = set()
        for lo in range(0, len(ids), 5000):
            got |= {p["id"] for p in rest.call("Get", {"collection": coll, "ids": ids[lo:lo + 5000],
                                                       "with_payload": False}).get("points", [])}
        missing = [i for i in ids if i not in got]
        assert not missing, "%s: %d of %d acknowledged points lost, e.g. %s" % (
            coll, len(missing), len(ids), missing[:5])
        n = rest.call("Count", {"collection": coll})["count"]
        assert n >= len(ids)
        # the index has them too (a strong search waits for the async one)
        r = rest.call("Search", {"collection": coll, "vector": [0.0] * DIM, "top_k": 10000, "exact": True,
                                 "consistency": "strong", "with_payload": False}, timeout=120)
        assert len(r["results"]) == min(n, 10000)


def test_writes_go_through_raft_and_replay_once(make_server):
    """Every write of `vectron serve` goes through its shard's one-voter
    Raft group: the group's log is on disk, the shard's applied index is
    the raft index (entry 1: the configuration, 2: the first leader's
    barrier, then one entry per write), and after kill -9 the restart
    replays the log without applying anything twice (the index does not
    move until the next write, which follows the new term's barrier)."""
    srv = make_server(shards=1)
    name = uniq("raft")
    rest = Rest(srv)
    rest.call("CreateCollection", {"name": name, "dimension": DIM, "distance": "dot"})
    # the shard is a replica group of the worker role (docs/serve.md)
    r = requests.get(srv.rest_url + "/v1/cluster/collections/" + name, timeout=30)
    assert r.status_code == 200, r.text
    group = r.json()["collections"][0]["shards"][0]["group"]
    shard_dir = os.path.join(srv.data_dir, "worker", "groups", str(group), "shard")
    assert os.path.exists(os.path.join(shard_dir, "raft", "metadata1")) or \
        os.path.exists(os.path.join(shard_dir, "raft", "metadata2"))
    rng = np.random.default_rng(29)
    v = rng.standard_normal((50, DIM)).astype(np.float32)
    for j in range(5):
        pts = [{"id": "r%d_%d" % (j, i), "vector": [float(x) for x in v[j * 10 + i]]} for i in range(10)]
        assert rest.call("Upsert", {"collection": name, "points": pts})["upserted"] == 10
    # a rejected write (wrong dimension) changes nothing and is never logged
    expect_error(lambda: rest.call("Upsert", {"collection": name, "points": [{"id": "bad", "vector": [1.0]}]}),
                 "INVALID_ARGUMENT", "dimension")

    def status():
        st = rest.call("GetCollection", {"name": name})["status"]
        return st["points"], st["shards"][0]["applied_index"]

    assert status() == (50, 7)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    srv.proc = None
    srv.start()
    rest = Rest(srv)
    assert status() == (50, 7)
    pts = [{"id": "after", "vector": [float(x) for x in v[0]]}]
    assert rest.call("Upsert", {"collection": name, "points": pts})["upserted"] == 1
    assert status() == (51, 9)
    assert srv.stop() == 0
