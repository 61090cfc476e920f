#!/usr/bin/env python3
"""A stock gRPC client (python3-grpcio) of abc.Echo, for proxy_pods.sh.

  grpc_client.py STUBDIR TARGET say|count
    say    unary Say(text="héllo pods", seq=-42): prints
           "say text=... seq=... served_by=..."
    count  server streaming Count(count=5, interval_ms=20): prints
           "count 1 2 3 4 5 served_by=..."
  An RPC error prints "status <CODE> <details>" (exit 0: the status is the
  result under test). The stubs are generated at test time from
  examples/app/abc.proto into STUBDIR.
"""
import sys
sys.path.insert(0, sys.argv[1])
import grpc, abc_pb2, abc_pb2_grpc

ch = grpc.insecure_channel(sys.argv[2])
stub = abc_pb2_grpc.EchoStub(ch)
try:
    if sys.argv[3] == "say":
        r = stub.Say(abc_pb2.SayRequest(text="héllo pods", seq=-42), timeout=10)
        print("say text=%s seq=%d served_by=%s" % (r.text, r.seq, r.served_by))
    else:
        rs = list(stub.Count(abc_pb2.CountRequest(count=5, interval_ms=20), timeout=10))
        print("count %s served_by=%s" % (" ".join(str(x.n) for x in rs),
                                         ",".join(sorted(set(x.served_by for x in rs)))))
except grpc.RpcError as e:
    print("status %s %s" % (e.code().name, e.details()))
