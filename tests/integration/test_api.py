"""test_api.py: the whole public API, once over REST and once over gRPC
(the `client` fixture), against one real server with 2 shards."""
import json
import os
import time

import numpy as np
import pytest
import requests

from conftest import ApiError, Grpc, Rest, expect_error, pb, uniq

DIM = 8


def vecs(n, seed=1, dim=DIM):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def points(v, prefix="p", payload=lambda i: {"i": i, "group": "even" if i % 2 == 0 else "odd"}):
    return [{"id": "%s%d" % (prefix, i), "vector": [float(x) for x in row], "payload": payload(i)}
            for i, row in enumerate(v)]


def create(c, name, distance="cosine", **kw):
    body = {"name": name, "dimension": kw.pop("dimension", DIM), "distance": distance}
    body.update(kw)
    return c.call("CreateCollection", body)


def ids(results):
    return [r["id"] for r in results]


def test_collections(client, server):
    name = uniq("coll")
    info = create(client, name, "euclid", hnsw={"m": 8, "ef_construct": 64},
                  indexed_fields=[{"path": "group", "type": "KEYWORD"}])
    assert info["name"] == name and info["dimension"] == DIM
    assert info["distance"].lower() == "euclid"
    assert info["shard_count"] == 2, info  # the server's --shards
    assert info["hnsw"]["m"] == 8 and info["hnsw"]["ef_construct"] == 64
    assert info["indexed_fields"][0]["path"] == "group"
    names = [c["name"] for c in client.call("ListCollections").get("collections", [])]
    assert name in names
    client.call("Upsert", {"collection": name, "points": points(vecs(10))})
    got = client.call("GetCollection", {"name": name})
    st = got["status"]
    assert st["points"] == 10 and len(st["shards"]) == 2
    assert sum(s["points"] for s in st["shards"]) == 10
    # Each shard is a replica group of the worker role, in
    # <data_dir>/worker/groups/<group>; the cluster route names them.
    r = requests.get(server.rest_url + "/v1/cluster/collections/" + name, timeout=30)
    assert r.status_code == 200, r.text
    shards = r.json()["collections"][0]["shards"]
    assert len(shards) == 2 and all(s.get("leader") for s in shards)
    gdirs = [os.path.join(server.data_dir, "worker", "groups", str(s["group"])) for s in shards]
    assert all(os.path.isdir(d) for d in gdirs), gdirs
    assert client.call("DeleteCollection", {"name": name})["deleted"] is True
    # Its data goes once the worker hears of the drop.
    left = gdirs
    for _ in range(100):
        left = [d for d in gdirs if os.path.exists(d)]
        if not left:
            break
        time.sleep(0.05)
    assert not left, left
    expect_error(lambda: client.call("GetCollection", {"name": name}), "NOT_FOUND", name)
    names = [c["name"] for c in client.call("ListCollections").get("collections", [])]
    assert name not in names
    # The name is free again, with a new shape.
    info = create(client, name, "dot", dimension=3)
    assert info["dimension"] == 3 and info["status"]["points"] == 0
    client.call("DeleteCollection", {"name": name})


def test_points(client):
    name = uniq("pts")
    create(client, name)
    v = vecs(30)
    r = client.call("Upsert", {"collection": name, "points": points(v)})
    assert r["upserted"] == 30 and r["created"] == 30
    r = client.call("Upsert", {"collection": name, "points": points(v[:5])})
    assert r["upserted"] == 5 and r.get("created", 0) == 0

    # get one, many (in request order, missing ones left out), with vector
    g = client.call("Get", {"collection": name, "ids": ["p3"]})["points"]
    assert len(g) == 1 and g[0]["id"] == "p3" and g[0]["payload"] == {"i": 3, "group": "odd"}
    assert "vector" not in g[0]
    g = client.call("Get", {"collection": name, "ids": ["p7", "nope", "p1"], "with_vector": True,
                            "with_payload": False})["points"]
    assert ids(g) == ["p7", "p1"]
    assert np.allclose(g[0]["vector"], v[7]) and "payload" not in g[0]

    # count, with a filter
    assert client.call("Count", {"collection": name})["count"] == 30
    even = {"must": [{"key": "group", "match": {"value": "even"}}]}
    assert client.call("Count", {"collection": name, "filter": even})["count"] == 15
    rng = {"must": [{"key": "i", "range": {"gte": 10, "lt": 20}}]}
    assert client.call("Count", {"collection": name, "filter": rng})["count"] == 10

    # set payload: merge keeps the other keys, replace does not
    r = client.call("SetPayload", {"collection": name, "ids": ["p2", "p4"],
                                   "payload": {"color": "red"}, "merge": True})
    assert r["updated"] == 2
    g = client.call("Get", {"collection": name, "ids": ["p2"]})["points"]
    assert g[0]["payload"] == {"i": 2, "group": "even", "color": "red"}
    r = client.call("SetPayload", {"collection": name, "ids": ["p2"], "payload": {"color": "blue"}})
    assert r["updated"] == 1
    g = client.call("Get", {"collection": name, "ids": ["p2", "p4"]})["points"]
    assert g[0]["payload"] == {"color": "blue"}
    assert g[1]["payload"] == {"i": 4, "group": "even", "color": "red"}
    expect_error(lambda: client.call("SetPayload", {"collection": name, "ids": ["ghost"],
                                                    "payload": {"a": 1}}), "NOT_FOUND", "ghost")

    # delete by ids, then by filter
    r = client.call("Delete", {"collection": name, "ids": ["p0", "p1", "ghost"]})
    assert r["deleted"] == 2
    assert client.call("Get", {"collection": name, "ids": ["p0", "p1"]}).get("points", []) == []
    odd = {"must": [{"key": "group", "match": {"value": "odd"}}]}
    r = client.call("Delete", {"collection": name, "filter": odd})
    assert r["deleted"] == 14  # p1 went already
    assert client.call("Count", {"collection": name})["count"] == 14  # 15 even - p0, + p2 (blue)
    assert client.call("Count", {"collection": name, "filter": odd})["count"] == 0
    expect_error(lambda: client.call("Delete", {"collection": name}), "INVALID_ARGUMENT", "ids", "filter")
    client.call("DeleteCollection", {"name": name})


def test_scroll(client):
    name = uniq("scroll")
    create(client, name)
    client.call("Upsert", {"collection": name, "points": points(vecs(53))})
    seen, cursor, pages = [], "", 0
    while True:
        r = client.call("Scroll", {"collection": name, "limit": 7, "cursor": cursor})
        page = r.get("points", [])
        assert len(page) <= 7
        assert all(p["payload"]["i"] >= 0 for p in page)  # with_payload defaults to true
        seen += ids(page)
        pages += 1
        cursor = r.get("next_cursor", "")
        if not cursor:
            break
        assert pages < 50, "the cursor does not advance"
    assert sorted(seen) == sorted("p%d" % i for i in range(53)), seen
    assert len(seen) == len(set(seen))
    # a filter and vectors
    even = {"must": [{"key": "group", "match": {"value": "even"}}]}
    r = client.call("Scroll", {"collection": name, "filter": even, "limit": 1000, "with_vector": True,
                               "with_payload": False})
    assert len(r["points"]) == 27 and not r.get("next_cursor")
    assert all(len(p["vector"]) == DIM and "payload" not in p for p in r["points"])
    client.call("DeleteCollection", {"name": name})


def brute(v, q, distance):
    if distance == "cosine":
        vn = v / np.linalg.norm(v, axis=1, keepdims=True)
        s = vn @ (q / np.linalg.norm(q))
        return np.argsort(-s, kind="stable"), s
    if distance == "dot":
        s = v @ q
        return np.argsort(-s, kind="stable"), s
    s = np.sqrt(((v - q) ** 2).sum(axis=1))
    return np.argsort(s, kind="stable"), s


@pytest.mark.parametrize("distance", ["cosine", "euclid", "dot"])
def test_search(client, distance):
    name = uniq("search_" + distance)
    create(client, name, distance)
    v = vecs(200, seed=2)
    client.call("Upsert", {"collection": name, "points": points(v)})
    q = vecs(1, seed=3)[0]
    order, s = brute(v, q, distance)
    qv = [float(x) for x in q]

    r = client.call("Search", {"collection": name, "vector": qv, "top_k": 10, "exact": True})["results"]
    assert ids(r) == ["p%d" % i for i in order[:10]]
    assert np.allclose([x["score"] for x in r], s[order[:10]], rtol=1e-4, atol=1e-4)
    assert all("payload" in x for x in r), "with_payload defaults to true"
    assert all("vector" not in x for x in r)
    better = (lambda a, b: a >= b - 1e-5) if distance != "euclid" else (lambda a, b: a <= b + 1e-5)
    assert all(better(r[i]["score"], r[i + 1]["score"]) for i in range(len(r) - 1)), "best first"

    # HNSW with a given ef (128, above the 100 points of a shard)
    r = client.call("Search", {"collection": name, "vector": qv, "top_k": 5, "ef": 128,
                               "with_payload": False, "with_vector": True})["results"]
    # ef above a shard's size walks every reachable node: the true top 5
    # (this caught concurrent inserts leaving nodes unreachable)
    assert set(ids(r)) == {"p%d" % i for i in order[:5]}, (ids(r), order[:5])
    assert all("payload" not in x and len(x["vector"]) == DIM for x in r)
    for x in r:
        assert np.allclose(x["vector"], v[int(x["id"][1:])])

    # a filter
    even = {"must": [{"key": "group", "match": {"value": "even"}}]}
    r = client.call("Search", {"collection": name, "vector": qv, "top_k": 5, "filter": even,
                               "exact": True})["results"]
    want = [i for i in order if i % 2 == 0][:5]
    assert ids(r) == ["p%d" % i for i in want]
    assert all(x["payload"]["group"] == "even" for x in r)

    # score_threshold: the 8th best score keeps exactly 8 (>= for
    # similarities, <= for the euclid distance)
    t = float(s[order[7]])
    t = t - 1e-4 if distance != "euclid" else t + 1e-4
    r = client.call("Search", {"collection": name, "vector": qv, "top_k": 50, "exact": True,
                               "score_threshold": t})["results"]
    assert ids(r) == ["p%d" % i for i in order[:8]], (t, [x["score"] for x in r])

    # batch: two searches, answered in order
    q2 = [float(x) for x in vecs(1, seed=4)[0]]
    o2, _ = brute(v, np.array(q2, dtype=np.float32), distance)
    r = client.call("SearchBatch", {"collection": name, "searches": [
        {"vector": qv, "top_k": 3, "exact": True},
        {"vector": q2, "top_k": 4, "exact": True, "with_payload": False}]})
    assert [ids(x["results"]) for x in r["responses"]] == [
        ["p%d" % i for i in order[:3]], ["p%d" % i for i in o2[:4]]]
    assert "payload" not in r["responses"][1]["results"][0]
    client.call("DeleteCollection", {"name": name})


def test_strong_consistency_async(client):
    """An async collection acknowledges writes before indexing them; a
    strong search waits until the index has them all."""
    name = uniq("async")
    create(client, name, "euclid", index_mode="ASYNC", hnsw={"ef_construct": 400})
    assert client.call("GetCollection", {"name": name})["index_mode"].lower() == "async"
    v = vecs(1500, seed=5, dim=DIM)
    for lo in range(0, 1500, 500):
        client.call("Upsert", {"collection": name, "points": [
            {"id": "p%d" % (lo + i), "vector": [float(x) for x in row]}
            for i, row in enumerate(v[lo:lo + 500])]})
    # exact: a graph search for all 1500 may miss a few, which is recall,
    # not consistency
    r = client.call("Search", {"collection": name, "vector": [0.0] * DIM, "top_k": 1500, "exact": True,
                               "consistency": "STRONG", "with_payload": False})["results"]
    assert len(r) == 1500, "a strong search sees every acknowledged write"
    st = client.call("GetCollection", {"name": name})["status"]
    assert st["points"] == 1500 and st.get("index_lag", 0) == 0 and st["indexed_points"] == 1500
    client.call("DeleteCollection", {"name": name})


def test_health(client):
    h = client.call("Health")
    assert h["status"] == "ok" and h["version"]


def test_search_stream(server):
    g = Grpc(server)
    name = uniq("stream")
    create(g, name, "cosine")
    v = vecs(100, seed=6)
    g.call("Upsert", {"collection": name, "points": points(v)})
    q = vecs(1, seed=7)[0]
    order, _ = brute(v, q, "cosine")
    msgs = g.call("SearchStream", {"collection": name, "vector": [float(x) for x in q], "top_k": 5,
                                   "exact": True})
    assert len(msgs) >= 2, msgs  # one per shard
    assert [m["shards_done"] for m in msgs] == list(range(1, len(msgs) + 1))
    assert all(m["shards_total"] == 2 for m in msgs)
    last = msgs[-1]
    assert last["shards_done"] == last["shards_total"]
    assert ids(last["results"]) == ["p%d" % i for i in order[:5]]
    assert all(len(m["results"]) <= 5 for m in msgs)
    # an error ends the stream with a status
    e = expect_error(lambda: g.call("SearchStream", {"collection": name, "vector": [1.0]}),
                     "INVALID_ARGUMENT", "vector")
    assert "dimension" in e.message
    g.call("DeleteCollection", {"name": name})
    g.close()


def test_rest_routes(server):
    """The REST-only shapes: a point by path, PUT upsert, /status, /health,
    /ready, CORS, unknown routes and verbs."""
    s = requests.Session()
    u = server.rest_url
    name = uniq("rest")
    r = s.post(u + "/v1/collections", json={"name": name, "dimension": 2, "distance": "dot"})
    assert r.status_code == 200, r.text
    # payload as JSON text is accepted as well as an object
    r = s.put(u + "/v1/collections/%s/points" % name,
              json={"points": [{"id": "a b/c", "vector": [1, 2], "payload": "{\"x\": 1}"}]})
    assert r.status_code == 200 and r.json()["upserted"] == 1, r.text
    r = s.get(u + "/v1/collections/%s/points/%s" % (name, requests.utils.quote("a b/c", safe="")))
    assert r.status_code == 200 and r.json()["points"][0]["payload"] == {"x": 1}, r.text
    r = s.get(u + "/v1/collections/%s/points/zzz" % name)
    assert r.status_code == 404 and "zzz" in r.json()["error"]["message"]
    r = s.get(u + "/v1/collections/%s/status" % name)
    assert r.status_code == 200 and r.json()["status"]["points"] == 1
    r = s.delete(u + "/v1/collections/%s/points/%s" % (name, requests.utils.quote("a b/c", safe="")))
    assert r.status_code == 200 and r.json()["deleted"] == 1, r.text
    # the body and the path must agree on the collection
    r = s.post(u + "/v1/collections/%s/points/count" % name, json={"collection": "other"})
    assert r.status_code == 400 and "collection" in r.json()["error"]["message"]
    r = s.get(u + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = s.get(u + "/ready")
    assert r.status_code == 200 and r.json()["ready"] is True
    r = s.get(u + "/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = s.patch(u + "/v1/collections")
    assert r.status_code == 405
    s.delete(u + "/v1/collections/" + name)


def test_metrics(server):
    g, rest = Grpc(server), Rest(server)
    name = uniq("metrics")
    create(rest, name)
    rest.call("Upsert", {"collection": name, "points": points(vecs(12))})
    g.call("Search", {"collection": name, "vector": [0.5] * DIM})
    expect_error(lambda: g.call("Count", {"collection": "missing_" + name}), "NOT_FOUND")
    r = requests.get(server.rest_url + "/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    t = r.text
    assert "# TYPE vectron_requests_total counter" in t
    assert 'vectron_requests_total{method="Upsert",code="OK"}' in t
    assert 'vectron_requests_total{method="Count",code="NOT_FOUND"}' in t
    assert 'vectron_request_seconds_bucket{method="Search",le="+Inf"}' in t
    assert 'vectron_collection_points{collection="%s"} 12' % name in t
    assert 'vectron_collection_index_lag{collection="%s"} 0' % name in t
    assert 'vectron_collection_memory_bytes{collection="%s"}' % name in t
    # serve's placement driver and gateway (docs/serve.md): one worker alive
    assert "\nvectron_pd_leader 1\n" in t and "\nvectron_pd_workers_alive 1\n" in t
    assert "\nvectron_pd_shards_leaderless 0\n" in t
    assert "vectron_gateway_routing_fetches_total" in t
    # every sample line parses as NAME{labels} VALUE
    for line in t.splitlines():
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
    rest.call("DeleteCollection", {"name": name})
    g.close()
