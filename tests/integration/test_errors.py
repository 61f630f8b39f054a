"""test_errors.py: every error of the "Bad input" list, on both transports
(the `client` fixture), with its status and a message naming the field;
then the limits that need a server started with other settings (body
size, deadline, overload), and garbage bytes / truncated protobuf, after
which the server must still answer."""
import json
import math
import socket
import threading
import time

import numpy as np
import pytest
import requests

import grpc
from conftest import SERVICE, ApiError, Grpc, Rest, expect_error, pb, uniq

DIM = 4


@pytest.fixture(scope="module")
def coll(server):
    name = uniq("err")
    r = Rest(server)
    r.call("CreateCollection", {"name": name, "dimension": DIM, "distance": "euclid"})
    r.call("Upsert", {"collection": name, "points": [
        {"id": "a", "vector": [1, 2, 3, 4], "payload": {"color": "red"}}]})
    return name


def count(c, name):
    return c.call("Count", {"collection": name})["count"]


def test_unknown_collection(client):
    for method, body in [("Search", {"collection": "nosuch", "vector": [1, 2, 3, 4]}),
                         ("Upsert", {"collection": "nosuch", "points": [{"id": "x", "vector": [1, 2, 3, 4]}]}),
                         ("Count", {"collection": "nosuch"}),
                         ("GetCollection", {"name": "nosuch"}),
                         ("DeleteCollection", {"name": "nosuch"})]:
        expect_error(lambda: client.call(method, body), "NOT_FOUND", "nosuch")


def test_duplicate_name(client, coll):
    expect_error(lambda: client.call("CreateCollection", {"name": coll, "dimension": 2, "distance": "dot"}),
                 "ALREADY_EXISTS", coll)


def test_bad_collection_settings(client):
    expect_error(lambda: client.call("CreateCollection", {"name": uniq("x"), "dimension": 2}),
                 "INVALID_ARGUMENT", "distance")
    expect_error(lambda: client.call("CreateCollection", {"name": "bad name!", "dimension": 2,
                                                          "distance": "dot"}), "INVALID_ARGUMENT", "name")
    expect_error(lambda: client.call("CreateCollection", {"name": uniq("x"), "distance": "dot"}),
                 "INVALID_ARGUMENT", "dimension")


def test_wrong_dimension(client, coll):
    expect_error(lambda: client.call("Upsert", {"collection": coll, "points": [
        {"id": "ok", "vector": [1, 2, 3, 4]}, {"id": "short", "vector": [1, 2, 3]}]}),
        "INVALID_ARGUMENT", "points[1].vector", "dimension")
    expect_error(lambda: client.call("Search", {"collection": coll, "vector": [1, 2, 3, 4, 5]}),
                 "INVALID_ARGUMENT", "vector", "dimension")
    expect_error(lambda: client.call("SearchBatch", {"collection": coll, "searches": [
        {"vector": [1, 2, 3, 4]}, {"vector": [1]}]}), "INVALID_ARGUMENT", "searches[1].vector")
    assert count(client, coll) == 1, "a refused batch writes nothing"


def test_nan(client, coll):
    # JSON has no NaN: REST gets a number out of float range instead.
    bad = float("nan") if client.transport == "grpc" else 1e39
    expect_error(lambda: client.call("Upsert", {"collection": coll, "points": [
        {"id": "n1", "vector": [1, 2, 3, 4]}, {"id": "n2", "vector": [1, bad, 3, 4]}]}),
        "INVALID_ARGUMENT", "points[1].vector[1]")
    expect_error(lambda: client.call("Search", {"collection": coll, "vector": [1, 2, bad, 4]}),
                 "INVALID_ARGUMENT", "vector[2]")
    if client.transport == "grpc":
        inf = float("inf")
        expect_error(lambda: client.call("Search", {"collection": coll, "vector": [1, 2, 3, 4],
                                                    "score_threshold": inf}),
                     "INVALID_ARGUMENT", "score_threshold")
    assert count(client, coll) == 1
    assert client.call("Get", {"collection": coll, "ids": ["n1", "n2"]}).get("points", []) == []


def test_bad_json(client, coll):
    """Bad JSON inside a payload or filter (both transports carry them as
    JSON), and a bad REST body."""
    expect_error(lambda: client.call("Upsert", {"collection": coll, "points": [
        {"id": "j", "vector": [1, 2, 3, 4], "payload": "{\"color\": red}"}]}),
        "INVALID_ARGUMENT", "points[0]", "payload")
    expect_error(lambda: client.call("Upsert", {"collection": coll, "points": [
        {"id": "j", "vector": [1, 2, 3, 4], "payload": "[1, 2]"}]}),
        "INVALID_ARGUMENT", "payload", "object")
    expect_error(lambda: client.call("Count", {"collection": coll, "filter": "{\"must\": ["}),
                 "INVALID_ARGUMENT", "filter")
    expect_error(lambda: client.call("SetPayload", {"collection": coll, "ids": ["a"], "payload": "{x"}),
                 "INVALID_ARGUMENT", "payload")
    if client.transport == "rest":
        url = client.base + "/v1/collections/%s/points/search" % coll
        for body, word in [(b'{"vector": [1, 2, 3, 4]', "body"), (b"not json", "body"),
                           (b'{"vector": [1, 2, 3, 4], "top_k": "ten"}', "top_k"),
                           (b'{"vector": "1,2,3,4"}', "vector"),
                           (b'{"vector": [1, 2, 3, 4]} trailing', "body"),
                           (b'{"vector": [1, 2, 3, 4], "exact": 1}', "exact"),
                           (b'[1, 2]', "object"), (b'\xff\xfe{}', "body")]:
            r = requests.post(url, data=body, timeout=30)
            assert r.status_code == 400, (body, r.text)
            e = r.json()["error"]
            assert e["code"] == "INVALID_ARGUMENT" and word in e["message"], (body, e)
    assert count(client, coll) == 1


def test_unknown_fields(client, coll):
    # unknown keys inside a filter: both transports
    expect_error(lambda: client.call("Count", {"collection": coll, "filter": {"must": [
        {"key": "color", "mtch": {"value": "red"}}]}}), "INVALID_ARGUMENT", "filter.must[0]", "mtch")
    expect_error(lambda: client.call("Count", {"collection": coll, "filter": {"mustt": []}}),
                 "INVALID_ARGUMENT", "mustt")
    if client.transport == "rest":
        url = client.base + "/v1/collections/%s/points" % coll
        for body, word in [({"points": [{"id": "u", "vector": [1, 2, 3, 4]}], "bogus": 1}, "bogus"),
                           ({"points": [{"id": "u", "vectr": [1, 2, 3, 4]}]}, "points[0].vectr")]:
            r = requests.post(url, json=body, timeout=30)
            assert r.status_code == 400, r.text
            e = r.json()["error"]
            assert e["code"] == "INVALID_ARGUMENT" and word in e["message"], e
    else:
        # Protobuf's rule: a field this server does not know (a newer
        # client's) is skipped, not refused; the known ones still count.
        raw = pb.CountRequest(collection=coll).SerializeToString() + b"\xa0\x06\x01"  # field 100 = 1
        call = client.ch.unary_unary(SERVICE + "Count", request_serializer=lambda b: b,
                                     response_deserializer=pb.CountResponse.FromString)
        assert call(raw, timeout=30).count == 1
    assert count(client, coll) == 1


def test_top_k_over_limit(client, coll):
    expect_error(lambda: client.call("Search", {"collection": coll, "vector": [1, 2, 3, 4], "top_k": 10001}),
                 "INVALID_ARGUMENT", "top_k", "10000")
    expect_error(lambda: client.call("Search", {"collection": coll, "vector": [1, 2, 3, 4], "top_k": 0}),
                 "INVALID_ARGUMENT", "top_k")
    expect_error(lambda: client.call("SearchBatch", {"collection": coll, "searches": [
        {"vector": [1, 2, 3, 4], "top_k": 20000}]}), "INVALID_ARGUMENT", "searches[0].top_k")
    expect_error(lambda: client.call("Scroll", {"collection": coll, "limit": 10001}),
                 "INVALID_ARGUMENT", "limit")


def test_unknown_filter_operator(client, coll):
    expect_error(lambda: client.call("Search", {"collection": coll, "vector": [1, 2, 3, 4], "filter": {
        "must": [{"key": "n", "range": {"gtx": 1}}]}}), "INVALID_ARGUMENT", "filter.must[0].range", "gtx")
    expect_error(lambda: client.call("Delete", {"collection": coll, "filter": {
        "should": [{"key": "color", "match": {"val": "red"}}]}}),
        "INVALID_ARGUMENT", "filter.should[0].match", "val")
    assert count(client, coll) == 1


def test_too_many_points(client, coll):
    pts = [{"id": "m%d" % i, "vector": [1, 2, 3, 4]} for i in range(10001)]
    e = expect_error(lambda: client.call("Upsert", {"collection": coll, "points": pts}),
                     "RESOURCE_EXHAUSTED", "points")
    assert e.http in (None, 413)


def test_oversized_body(make_server):
    srv = make_server(["--max-body-bytes", "100000", "--max-message-bytes", "100000"])
    rest, g = Rest(srv), Grpc(srv)
    name = uniq("big")
    rest.call("CreateCollection", {"name": name, "dimension": 256, "distance": "dot"})
    pts = [{"id": "b%d" % i, "vector": [0.123456] * 256} for i in range(100)]  # ~ 250 kB
    r = requests.post(srv.rest_url + "/v1/collections/%s/points" % name, json={"points": pts}, timeout=30)
    assert r.status_code == 413, r.text[:300]
    assert r.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert "100000" in r.json()["error"]["message"] or "body" in r.json()["error"]["message"]
    expect_error(lambda: g.call("Upsert", {"collection": name, "points": pts}), "RESOURCE_EXHAUSTED")
    # both still serve, on the same connections too
    assert rest.call("Count", {"collection": name})["count"] == 0
    assert g.call("Count", {"collection": name}).get("count", 0) == 0
    assert rest.call("Upsert", {"collection": name, "points": pts[:10]})["upserted"] == 10
    g.close()


def test_deadline(make_server):
    srv = make_server()
    g, rest = Grpc(srv), Rest(srv)
    name = uniq("dl")
    dim = 128
    rest.call("CreateCollection", {"name": name, "dimension": dim, "distance": "euclid",
                                   "hnsw": {"ef_construct": 16, "m": 4}})
    # enough points that an exact top-10000 search cannot finish inside the
    # 1 ms deadline even on a quiet machine (4000 sometimes did)
    v = np.random.default_rng(9).random((16000, dim), dtype=np.float32)
    for lo in range(0, len(v), 1000):
        req = pb.UpsertRequest(collection=name)
        for i in range(lo, lo + 1000):
            req.points.add(id="d%d" % i, vector=v[i])
        g.raw("Upsert", req)
    big = {"collection": name, "vector": [0.5] * dim, "top_k": 10000, "exact": True}
    for _ in range(3):
        expect_error(lambda: g.call("Search", big, timeout=0.001), "DEADLINE_EXCEEDED")
        expect_error(lambda: list(g.call("SearchStream", big, timeout=0.001)), "DEADLINE_EXCEEDED")
    # a strong search waiting on nothing with a tiny timeout_ms still
    # answers; the server is fine afterwards
    assert len(g.call("Search", dict(big, top_k=5), timeout=60)["results"]) == 5
    g.close()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_deadline_strong_wait(make_server, transport):
    """A strong search waits for the index up to its timeout_ms; an async
    collection with a backlog makes a 1 ms wait expire: DEADLINE_EXCEEDED
    (504 on REST, which has no deadline header of its own)."""
    srv = make_server()
    c = Rest(srv) if transport == "rest" else Grpc(srv)
    name = uniq("dls")
    dim = 128
    c.call("CreateCollection", {"name": name, "dimension": dim, "distance": "euclid",
                                "index_mode": "async", "hnsw": {"ef_construct": 500, "m": 32}})
    v = np.random.default_rng(10).random((3000, dim), dtype=np.float32)
    req = pb.UpsertRequest(collection=name)
    for i in range(len(v)):
        req.points.add(id="s%d" % i, vector=v[i])
    g = Grpc(srv)
    g.raw("Upsert", req)
    e = expect_error(lambda: c.call("Search", {"collection": name, "vector": [0.5] * dim, "top_k": 3,
                                               "consistency": "strong", "timeout_ms": 1}),
                     "DEADLINE_EXCEEDED")
    assert e.message
    # given time, the same search answers with every point in view
    r = c.call("Search", {"collection": name, "vector": [0.5] * dim, "top_k": 3000, "exact": True,
                          "consistency": "strong", "timeout_ms": 120000}, timeout=150)
    assert len(r["results"]) == 3000
    g.close()


def test_overload(make_server):
    """An async collection with room for 10 waiting changes and 1 ms of
    patience: a burst of large upserts gets 429 / RESOURCE_EXHAUSTED, and
    every acknowledged point is there afterwards."""
    srv = make_server(["--queue-max", "10", "--queue-wait-ms", "1"])
    name = uniq("ovl")
    dim = 64
    Rest(srv).call("CreateCollection", {"name": name, "dimension": dim, "distance": "euclid",
                                        "index_mode": "async", "hnsw": {"ef_construct": 400, "m": 32}})
    v = np.random.default_rng(11).random((4000, dim), dtype=np.float32)
    results = {"rest": [], "grpc": []}
    acked = []
    lock = threading.Lock()

    def burst(k, transport):
        c = Rest(srv) if transport == "rest" else Grpc(srv)
        for j in range(5):
            lo = (k * 5 + j) * 100
            pts = [{"id": "o%d" % i, "vector": [float(x) for x in v[i]]} for i in range(lo, lo + 100)]
            try:
                c.call("Upsert", {"collection": name, "points": pts})
                with lock:
                    acked.extend(p["id"] for p in pts)
                    results[transport].append("OK")
            except ApiError as e:
                with lock:
                    results[transport].append(e)
        if transport == "grpc":
            c.close()

    ts = [threading.Thread(target=burst, args=(k, "rest" if k % 2 else "grpc")) for k in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("overload: %d points acknowledged; %s" % (len(acked), {
        t: "%d ok, %d refused" % (res.count("OK"), len(res) - res.count("OK")) for t, res in results.items()}))
    for transport, res in results.items():
        errs = [e for e in res if e != "OK"]
        assert errs, "no overload over %s: %s" % (transport, res)
        for e in errs:
            assert e.code == "RESOURCE_EXHAUSTED", e
            assert e.http in (None, 429), e
            assert e.message, e
    # the server catches up and keeps every acknowledged point
    rest = Rest(srv)
    for _ in range(600):
        if rest.call("GetCollection", {"name": name})["status"].get("index_lag", 0) == 0:
            break
        time.sleep(0.1)
    got = rest.call("Get", {"collection": name, "ids": acked}).get("points", [])
    assert len(got) == len(acked)


def _raw(port, data, read=True, until=None):
    """Sends data; reads until the server closes, `until` arrives or 3 s
    pass."""
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while len(out) < 65536:
                b = s.recv(65536)
                if not b:
                    break
                out += b
                if until and until in out:
                    break
        except socket.timeout:
            pass
        return out
    finally:
        s.close()


def test_garbage(server, coll):
    """Garbage on both ports, malformed HTTP/2 and truncated protobuf never
    crash the server; it answers afterwards."""
    rng = np.random.default_rng(5)
    junk = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in (1, 17, 1000, 70000)]
    for j in junk + [b"\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                     b"POST /v1/collections HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                     b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n"]:
        _raw(server.rest_port, j, read=False)
        _raw(server.grpc_port, j, read=False)
    r = _raw(server.rest_port, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", until=b"\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 4"), r[:100]
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    frames = [
        b"\x00\x00\x00\x04\x00\x00\x00\x00\x00",                    # SETTINGS
        b"\x00\x00\x05\x01\x05\x00\x00\x00\x01\xff\xff\xff\xff\xff",  # HEADERS, bad HPACK
        b"\x00\x00\x08\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x09abc",  # DATA on an idle stream
        b"\xff\xff\xff\x07\x00\x00\x00\x00\x00",                    # GOAWAY, absurd length
        b"\x00\x00\x03\x04\x00\x00\x00\x00\x00\x00\x01\x00",        # SETTINGS, bad length
    ]
    for f in frames:
        _raw(server.grpc_port, preface + frames[0] + f)
    # truncated and garbage protobuf through a real gRPC client
    ch = grpc.insecure_channel("127.0.0.1:%d" % server.grpc_port)
    good = pb.UpsertRequest(collection=coll, points=[pb.Point(id="t", vector=[1, 2, 3, 4])]).SerializeToString()
    for method in ("Upsert", "Search", "CreateCollection", "SearchStream", "SearchBatch"):
        mk = ch.unary_stream if method == "SearchStream" else ch.unary_unary
        call = mk(SERVICE + method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        for body in (good[:len(good) // 2], good[:-1], b"\xff" * 20, b"\x0a\xff\xff\xff\xff\x0f"):
            with pytest.raises(grpc.RpcError) as ei:
                r = call(body, timeout=30)
                if method == "SearchStream":
                    list(r)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, body, ei.value)
    # an unknown method
    with pytest.raises(grpc.RpcError) as ei:
        ch.unary_unary(SERVICE + "Nope", request_serializer=lambda b: b)(b"", timeout=30)
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
    ch.close()
    assert server.alive(), server.log_text()
    assert Rest(server).call("Count", {"collection": coll})["count"] == 1
    g = Grpc(server)
    assert g.call("Count", {"collection": coll})["count"] == 1
    g.close()
