"""test_fashion_mnist.py: a Fashion-MNIST subset (Debian's
dataset-fashion-mnist, the files bench/dataset.c reads) upserted over gRPC
into a 2-shard euclid collection. Served exact search must return the
brute-force (numpy) neighbours, and default HNSW search must reach
recall@10 >= 0.95 against them."""
import gzip
import os

import numpy as np
import pytest

from conftest import Grpc, pb, uniq

DIR = "/usr/share/datasets/fashion-mnist"
N_BASE, N_QUERY, K = 4000, 100, 10


def idx_images(path, n):
    with gzip.open(path, "rb") as f:
        hdr = f.read(16)
        assert int.from_bytes(hdr[:4], "big") == 0x803, "not an IDX3 ubyte file"
        count, rows, cols = (int.from_bytes(hdr[i:i + 4], "big") for i in (4, 8, 12))
        assert (rows, cols) == (28, 28) and count >= n
        data = np.frombuffer(f.read(n * 784), dtype=np.uint8)
    return data.reshape(n, 784).astype(np.float32)  # 0..255, as bench/dataset.c


@pytest.fixture(scope="module")
def data():
    train, test = (os.path.join(DIR, f) for f in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"))
    if not (os.path.exists(train) and os.path.exists(test)):
        pytest.fail("install Debian's dataset-fashion-mnist (make deps): %s missing" % DIR)
    base, queries = idx_images(train, N_BASE), idx_images(test, N_QUERY)
    b, q = base.astype(np.float64), queries.astype(np.float64)
    # |q|^2 + |b|^2 - 2 q.b: exact in float64 for 0..255 integer pixels
    d2 = (q ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * q @ b.T
    d = np.sqrt(np.maximum(d2, 0))
    order = np.argsort(d, axis=1, kind="stable")[:, :K]
    return base, queries, d, order


def test_fashion_mnist(server, data):
    base, queries, d, order = data
    g = Grpc(server)
    name = uniq("fmnist")
    g.call("CreateCollection", {"name": name, "dimension": 784, "distance": "euclid"})
    for lo in range(0, N_BASE, 1000):
        req = pb.UpsertRequest(collection=name)
        for i in range(lo, lo + 1000):
            req.points.add(id=str(i), vector=base[i])
        assert g.raw("Upsert", req, timeout=120).upserted == 1000
    assert g.call("Count", {"collection": name})["count"] == N_BASE

    hits = 0
    for qi, q in enumerate(queries):
        req = pb.SearchRequest(collection=name, vector=q, top_k=K, exact=True, with_payload=False)
        got = g.raw("Search", req, timeout=120).results
        ids = [int(x.id) for x in got]
        scores = np.array([x.score for x in got], dtype=np.float64)
        want = d[qi, order[qi]]
        # the k best distances, each the true distance of the id it names
        assert len(ids) == K
        assert np.allclose(scores, want, rtol=1e-5), (qi, scores, want)
        assert np.allclose(d[qi, ids], scores, rtol=1e-5), (qi, ids)
        # the same ids, except where distances tie (integer pixels do)
        for pos, (a, b) in enumerate(zip(ids, order[qi])):
            if a != b:
                assert abs(d[qi, a] - d[qi, b]) <= 1e-5 * d[qi, b], (qi, pos, ids, list(order[qi]))
        req = pb.SearchRequest(collection=name, vector=q, top_k=K, with_payload=False)
        approx = {int(x.id) for x in g.raw("Search", req, timeout=120).results}
        kth = want[-1] * (1 + 1e-5)
        hits += len({i for i in approx if d[qi, i] <= kth} & set(np.flatnonzero(d[qi] <= kth)))
    recall = hits / (N_QUERY * K)
    print("recall@10 of default HNSW search: %.4f" % recall)
    assert recall >= 0.95, recall
    g.call("DeleteCollection", {"name": name})
    g.close()
