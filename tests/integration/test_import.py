"""A data directory of an earlier serve (collections in <data>/collections,
before serve ran the cluster roles) is imported at start: the server
announces itself only once every point is in the worker's replicas, the
config (dimension, metric, shards, indexed fields) and payloads come along,
the old files are kept in collections.imported, and a second start does
not import again."""
import os
import subprocess

import requests

from conftest import Rest

OLD = os.environ["VT_OLD_LAYOUT"]
N = 300


def test_import_earlier_layout(make_server, tmp_root):
    import tempfile
    d = tempfile.mkdtemp(dir=tmp_root, prefix="data-old-")
    subprocess.run([OLD, d, str(N)], check=True, timeout=120)
    assert os.path.isdir(os.path.join(d, "collections", "legacy"))
    srv = make_server(data_dir=d)  # started: the ready line comes after the import
    rest = Rest(srv)
    info = rest.call("GetCollection", {"name": "legacy"})
    assert info["dimension"] == 4 and info["distance"].lower() == "cosine"
    assert info["shard_count"] == 3
    assert [f["path"] for f in info["indexed_fields"]] == ["group"]
    assert info["status"]["points"] == N
    got = rest.call("Get", {"collection": "legacy", "ids": ["p0", "p7", "p299"], "with_vector": True})
    pts = {p["id"]: p for p in got["points"]}
    assert set(pts) == {"p0", "p7", "p299"}
    assert pts["p7"]["payload"] == {"i": 7, "group": "g1"}
    assert rest.call("Count", {"collection": "legacy",
                               "filter": {"must": [{"key": "group", "match": {"value": "g2"}}]}})["count"] == N // 3
    res = rest.call("Search", {"collection": "legacy", "vector": [1, 7, 0, 1], "top_k": 1})["results"]
    assert res[0]["id"] == "p7"
    # the old files are kept aside, the new ones are the worker's
    assert not os.path.exists(os.path.join(d, "collections"))
    assert os.path.isdir(os.path.join(d, "collections.imported", "legacy"))
    assert os.path.isdir(os.path.join(d, "worker", "groups"))
    r = requests.get(srv.rest_url + "/ready", timeout=10)
    assert r.status_code == 200
    # a restart does not import again and keeps everything
    assert srv.stop() == 0
    log = open(srv.log).read()
    assert "imported 1 collections" in log
    srv.start()
    rest = Rest(srv)
    assert rest.call("GetCollection", {"name": "legacy"})["status"]["points"] == N
    assert open(srv.log).read().count("imported 1 collections") == 1
    assert srv.stop() == 0


def test_import_failure_changes_nothing(tmp_root):
    """An earlier layout that cannot be read stops the server (exit 1, the
    reason in the log) and leaves the old files where they were."""
    import tempfile
    from conftest import BIN
    d = tempfile.mkdtemp(dir=tmp_root, prefix="data-bad-")
    subprocess.run([OLD, d, "10"], check=True, timeout=120)
    cj = os.path.join(d, "collections", "legacy", "collection.json")
    with open(cj, "w") as f:
        f.write("{not json")
    p = subprocess.run([BIN, "serve", "--data-dir", d, "--rest-port", "0", "--grpc-port", "0"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    assert "import of the earlier layout failed" in p.stderr, p.stderr[-2000:]
    assert "collection.json" in p.stderr
    assert os.path.isfile(cj) and not os.path.exists(os.path.join(d, "collections.imported"))
