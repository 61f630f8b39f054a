"""vtclient.py: the public API from Python over both transports, for the
integration tests (conftest.py) and the cluster tests (tests/cluster),
which drive a gateway exactly as a `vectron serve`: REST (requests) and
gRPC (grpcio, generic calls with message classes that protoc generates at
test time), one error shape for both (ApiError).

Environment (set by CMake):
  VECTRON_PROTO   proto/vectron/v1/vectron.proto
  VECTRON_GEN     a directory of the build tree for the generated module
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import requests

import grpc
from google.protobuf import json_format

PROTO = os.environ.get("VECTRON_PROTO", "")
GEN = os.environ.get("VECTRON_GEN", "")
SERVICE = "/vectron.v1.VectronService/"


def _load_pb():
    """protoc --python_out into the build tree; atomic, because several
    CTest processes may generate at once."""
    if not (PROTO and GEN):
        raise RuntimeError("run through CTest: VECTRON_PROTO and VECTRON_GEN are unset")
    os.makedirs(GEN, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=GEN, prefix=".gen-")
    try:
        subprocess.run(["protoc", "--python_out=" + tmp, "-I" + os.path.dirname(PROTO), PROTO],
                       check=True)
        os.replace(os.path.join(tmp, "vectron_pb2.py"), os.path.join(GEN, "vectron_pb2.py"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.path.insert(0, GEN)
    import vectron_pb2
    return vectron_pb2


pb = _load_pb()

# method -> (request class, response class, REST verb, REST path or None)
METHODS = {
    "CreateCollection": (pb.CreateCollectionRequest, pb.CollectionInfo, "POST", "/v1/collections"),
    "ListCollections": (pb.ListCollectionsRequest, pb.ListCollectionsResponse, "GET", "/v1/collections"),
    "GetCollection": (pb.GetCollectionRequest, pb.CollectionInfo, "GET", "/v1/collections/{name}"),
    "DeleteCollection": (pb.DeleteCollectionRequest, pb.DeleteCollectionResponse, "DELETE",
                         "/v1/collections/{name}"),
    "Upsert": (pb.UpsertRequest, pb.UpsertResponse, "POST", "/v1/collections/{collection}/points"),
    "Get": (pb.GetRequest, pb.GetResponse, "POST", "/v1/collections/{collection}/points/get"),
    "Delete": (pb.DeleteRequest, pb.DeleteResponse, "POST", "/v1/collections/{collection}/points/delete"),
    "SetPayload": (pb.SetPayloadRequest, pb.SetPayloadResponse, "POST",
                   "/v1/collections/{collection}/points/payload"),
    "Scroll": (pb.ScrollRequest, pb.ScrollResponse, "POST", "/v1/collections/{collection}/points/scroll"),
    "Count": (pb.CountRequest, pb.CountResponse, "POST", "/v1/collections/{collection}/points/count"),
    "Search": (pb.SearchRequest, pb.SearchResponse, "POST", "/v1/collections/{collection}/points/search"),
    "SearchBatch": (pb.SearchBatchRequest, pb.SearchBatchResponse, "POST",
                    "/v1/collections/{collection}/points/search/batch"),
    "SearchStream": (pb.SearchRequest, pb.SearchResponse, None, None),
    "Health": (pb.HealthRequest, pb.HealthResponse, "GET", "/v1/health"),
}

HTTP_OF = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
           "DEADLINE_EXCEEDED": 504}


class ApiError(Exception):
    """One error shape for both transports: the status name (gRPC's
    StatusCode name, the REST body's "code"), the HTTP status (REST only)
    and the message."""

    def __init__(self, code, message, http=None):
        super().__init__("%s (%s): %s" % (code, http, message))
        self.code, self.message, self.http = code, message, http


def _norm(x):
    """MessageToDict writes 64-bit integers as strings and enums in
    upper case; REST writes numbers and (maybe) lower case. Make them
    comparable."""
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_norm(v) for v in x]
    if isinstance(x, str) and re.fullmatch(r"-?\d+", x) and len(x) < 21:
        return int(x)
    return x


ENUM_KEYS = ("distance", "index_mode", "consistency", "type")


def _as_text(x):
    """REST-style dict -> ParseDict input: payloads and filters as JSON
    text, enum names in upper case (REST takes any case)."""
    if isinstance(x, dict):
        return {k: json.dumps(v) if k in ("payload", "filter") and isinstance(v, dict)
                else v.upper() if k in ENUM_KEYS and isinstance(v, str)
                else _as_text(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_as_text(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):  # ParseDict's spelling
        return "NaN" if math.isnan(x) else "Infinity" if x > 0 else "-Infinity"
    return x


def _payload_objects(x):
    """gRPC carries payloads as JSON text, REST as objects: make them
    objects."""
    if isinstance(x, dict):
        return {k: (json.loads(v) if v else {}) if k == "payload" and isinstance(v, str)
                else _payload_objects(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_payload_objects(v) for v in x]
    return x


class Rest:
    transport = "rest"

    def __init__(self, srv):
        self.base = srv.rest_url
        self.s = requests.Session()

    def call(self, method, body=None, timeout=60):
        body = dict(body or {})
        _, _, verb, path = METHODS[method]
        if path is None:
            pytest.skip("%s has no REST route" % method)
        for k in re.findall(r"{(\w+)}", path):
            path = path.replace("{%s}" % k, requests.utils.quote(str(body.get(k, "")), safe=""))
            if verb in ("GET", "DELETE"):
                body.pop(k, None)
        url = self.base + path
        if verb == "GET" or (verb == "DELETE" and not body):
            r = self.s.request(verb, url, timeout=timeout)
        else:
            r = self.s.request(verb, url, data=json.dumps(body), timeout=timeout,
                               headers={"Content-Type": "application/json"})
        return self.result(r)

    @staticmethod
    def result(r):
        try:
            doc = r.json()
        except ValueError:
            raise ApiError("NOT_JSON", r.text[:300], r.status_code)
        if r.status_code != 200:
            # {"error": {"code": NAME, "message": TEXT}, "status": HTTP}
            err = doc.get("error")
            assert isinstance(err, dict) and set(err) >= {"code", "message"}, doc
            assert doc.get("status") == r.status_code, doc
            raise ApiError(err["code"], err["message"], r.status_code)
        return _norm(doc)


class Grpc:
    transport = "grpc"

    def __init__(self, srv):
        self.ch = grpc.insecure_channel("127.0.0.1:%d" % srv.grpc_port)
        self.stubs = {}
        for name, (req, resp, _, _) in METHODS.items():
            mk = self.ch.unary_stream if name == "SearchStream" else self.ch.unary_unary
            self.stubs[name] = mk(SERVICE + name, request_serializer=req.SerializeToString,
                                  response_deserializer=resp.FromString)

    def msg(self, method, body):
        """A dict as the REST body would be (payloads and filters may be
        objects) -> the request message (where they are JSON text)."""
        return json_format.ParseDict(_as_text(body or {}), METHODS[method][0]())

    def raw(self, method, request, timeout=60):
        """The generated message in, the generated message out."""
        try:
            if method == "SearchStream":
                return list(self.stubs[method](request, timeout=timeout))
            return self.stubs[method](request, timeout=timeout)
        except grpc.RpcError as e:
            raise ApiError(e.code().name, e.details())

    def call(self, method, body=None, timeout=60):
        out = self.raw(method, body if not isinstance(body, (dict, type(None)))
                       else self.msg(method, body), timeout)
        todict = lambda m: _payload_objects(
            _norm(json_format.MessageToDict(m, preserving_proto_field_name=True)))
        return [todict(m) for m in out] if isinstance(out, list) else todict(out)

    def close(self):
        self.ch.close()


