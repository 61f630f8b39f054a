#!/usr/bin/python3
"""interop_py.py: Debian's python3-grpcio (a real gRPC stack) against the C
test server (grpc_test_server): unary, streaming, metadata, error status and
message, deadline, unknown method, garbage, size limit, compression,
concurrency, cancellation; then a graceful SIGTERM with no leak.
Usage: interop_py.py SERVER_BINARY ECHO_PROTO. Exit 77 = skipped."""
import os
import signal
import subprocess
import sys
import tempfile
import threading

try:
    import grpc
except ImportError:
    print("SKIP: python3-grpcio is not installed")
    sys.exit(77)

server_bin, proto = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="vt-grpc-py-")
proto = os.path.abspath(proto)
r = subprocess.run(["protoc", "--python_out=" + tmp, "-I" + os.path.dirname(proto), proto])
if r.returncode != 0:
    print("SKIP: protoc --python_out failed")
    sys.exit(77)
sys.path.insert(0, tmp)
import echo_pb2 as pb  # noqa: E402

srv = subprocess.Popen([server_bin], stdout=subprocess.PIPE, text=True)
line = srv.stdout.readline().split()
assert line and line[0] == "PORT", line
port = int(line[1])
ch = grpc.insecure_channel("127.0.0.1:%d" % port)
ser = pb.EchoRequest.SerializeToString
de = pb.EchoReply.FromString
say = ch.unary_unary("/vt.test.Echo/Say", request_serializer=ser, response_deserializer=de)
stream = ch.unary_stream("/vt.test.Echo/Stream", request_serializer=ser, response_deserializer=de)
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (" " + str(detail) if detail and not cond else ""))
    if not cond:
        failures.append(name)


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


# unary + metadata + deadline visible to the handler
rep = say(pb.EchoRequest(msg="hi", vec=[0.5] * 768), timeout=5,
          metadata=[("authorization", "Bearer py")])
check("unary", rep.msg == "hi" and len(rep.vec) == 768 and rep.vec[0] == 0.5)
check("metadata", rep.auth == "Bearer py", rep.auth)
check("deadline header", rep.had_deadline)
rep = say(pb.EchoRequest(msg="later", delay_ms=30))
check("async answer", rep.msg == "later" and not rep.had_deadline)

# server streaming
got = [m.n for m in stream(pb.EchoRequest(msg="s", count=20), timeout=5)]
check("streaming", got == list(range(20)), got)
got = [len(m.pad) for m in stream(pb.EchoRequest(count=40, reply_bytes=100000), timeout=10)]
check("streaming big", got == [100000] * 40)

# error status with a message that needs percent-encoding
msg = "collection \"x\" not found: 100% g\u00fcltig"
code, det = code_of(lambda: say(pb.EchoRequest(fail_code=5, fail_msg=msg)))
check("error status", code == grpc.StatusCode.NOT_FOUND and det == msg, (code, det))
code, det = code_of(lambda: list(stream(pb.EchoRequest(count=2, fail_code=10, fail_msg="stop"))))
check("stream error", code == grpc.StatusCode.ABORTED and det == "stop", (code, det))

# deadline
code, _ = code_of(lambda: say(pb.EchoRequest(delay_ms=3000), timeout=0.2))
check("deadline", code == grpc.StatusCode.DEADLINE_EXCEEDED, code)

# unknown method, garbage, size, compression
nope = ch.unary_unary("/vt.test.Echo/Nope", request_serializer=ser, response_deserializer=de)
code, det = code_of(lambda: nope(pb.EchoRequest()))
check("unknown method", code == grpc.StatusCode.UNIMPLEMENTED and "unknown method" in det, (code, det))
raw = ch.unary_unary("/vt.test.Echo/Say", request_serializer=lambda b: b, response_deserializer=de)
code, _ = code_of(lambda: raw(b"\xff\xff\xff"))
check("garbage protobuf", code == grpc.StatusCode.INVALID_ARGUMENT, code)
code, _ = code_of(lambda: say(pb.EchoRequest(msg="x" * (2 << 20))))
check("oversized", code == grpc.StatusCode.RESOURCE_EXHAUSTED, code)
code, _ = code_of(lambda: say(pb.EchoRequest(msg="z"), compression=grpc.Compression.Gzip))
check("gzip refused", code == grpc.StatusCode.UNIMPLEMENTED, code)

# many concurrent calls on one channel
futs = [say.future(pb.EchoRequest(msg=str(i), delay_ms=i % 3)) for i in range(300)]
check("concurrent", all(f.result(timeout=20).msg == str(i) for i, f in enumerate(futs)))

# cancellation of a stream in progress
it = stream(pb.EchoRequest(count=1000, delay_ms=5))
first = [next(it).n for _ in range(3)]
it.cancel()
code, _ = code_of(lambda: list(it))
check("cancel", first == [0, 1, 2] and code == grpc.StatusCode.CANCELLED, (first, code))

# graceful shutdown with a call in flight
fut = say.future(pb.EchoRequest(msg="inflight", delay_ms=300))
threading.Event().wait(0.1)
srv.send_signal(signal.SIGTERM)
try:
    check("in flight at shutdown", fut.result(timeout=10).msg == "inflight")
except grpc.RpcError as e:
    check("in flight at shutdown", False, e.code())
ch.close()
rc = srv.wait(timeout=10)
check("server exit (no leak)", rc == 0, rc)
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
