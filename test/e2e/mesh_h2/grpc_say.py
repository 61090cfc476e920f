#!/usr/bin/python3
"""grpc_say.py: calls abc.Echo/Say through a proxy, for test/e2e/mesh_h2.sh.

  grpc_say.py STUBS_DIR ADDR AUTHORITY N [META_KEY=VALUE...]

Makes N unary calls (text "x", seq i) on one channel to ADDR with
:authority AUTHORITY, each with a 5 s deadline, and prints one line:
  ok=K fail=F codes=CODE:COUNT,... served=NAME:COUNT,... ms=MAX_MS
served counts the replies' served_by; ms is the slowest call.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import abc_pb2  # noqa: E402
import abc_pb2_grpc  # noqa: E402


def main():
    addr, auth, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    meta = [tuple(kv.split("=", 1)) for kv in sys.argv[5:]]
    ch = grpc.insecure_channel(addr, options=[
        ("grpc.default_authority", auth),
        ("grpc.enable_retries", 0)])
    stub = abc_pb2_grpc.EchoStub(ch)
    ok = fail = 0
    codes, served = {}, {}
    slowest = 0.0
    for i in range(n):
        t0 = time.monotonic()
        try:
            r = stub.Say(abc_pb2.SayRequest(text="x", seq=i), timeout=5,
                         metadata=meta or None)
            if r.seq != i or r.text != "x":
                raise ValueError("bad reply")
            ok += 1
            served[r.served_by] = served.get(r.served_by, 0) + 1
        except grpc.RpcError as e:
            fail += 1
            c = e.code().name
            codes[c] = codes.get(c, 0) + 1
        slowest = max(slowest, time.monotonic() - t0)
    print("ok=%d fail=%d codes=%s served=%s ms=%d" % (
        ok, fail,
        ",".join("%s:%d" % kv for kv in sorted(codes.items())),
        ",".join("%s:%d" % kv for kv in sorted(served.items())),
        slowest * 1000))
    ch.close()


if __name__ == "__main__":
    main()
