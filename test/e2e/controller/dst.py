#!/usr/bin/env python3
"""A stock gRPC client (python3-grpcio) of meshd.destination.v1.Destination,
for controller.sh. The stubs are generated at test time from
api/destination.proto into STUBDIR.

  dst.py STUBDIR watch ADDR get|profile PATH OUT [SECONDS]
      Streams the call and appends each message to OUT as one JSON line
      (normalised, see norm_update/norm_profile) with its arrival time "t";
      the final status goes on a last line {"status": CODE, ...}.
  dst.py STUBDIR once ADDR get|profile PATH [SECONDS]
      Prints the first message as a JSON line, or "status CODE details".
  dst.py STUBDIR status ADDR get|profile PATH SECONDS
      Reads the stream until it ends; prints "status CODE details".
  dst.py STUBDIR raw ADDR METHOD_PATH HEX [SECONDS]
      Sends the bytes HEX as the request of METHOD_PATH; prints the status.
  dst.py STUBDIR many ADDR PATH N
      Opens N Get streams on one channel, prints "first N" once each got
      its first message, then holds them until killed.
  expect: dst.py - expect OUT N EXPR [SECONDS]
      Waits until OUT has N lines, then evaluates the Python expression EXPR
      with m = line N (parsed) and ms = all lines; exit 0 when true, else
      prints what it saw and exits 1.
"""
import ipaddress
import json
import sys
import time


def ip_str(b):
    return str(ipaddress.ip_address(bytes(b)))


def norm_addr(wa):
    d = {"ip": ip_str(wa.addr.ip), "port": wa.addr.port, "weight": wa.weight,
         "labels": dict(wa.metric_labels)}
    if wa.HasField("tls_identity"):
        d["id"] = wa.tls_identity.dns_like_identity.name
    if wa.HasField("protocol_hint"):
        d["hint"] = wa.protocol_hint.WhichOneof("protocol")
    return d


def norm_update(u):
    k = u.WhichOneof("update")
    if k == "add":
        return {"add": sorted((norm_addr(a) for a in u.add.addrs),
                              key=lambda a: (a["ip"], a["port"])),
                "set_labels": dict(u.add.metric_labels)}
    if k == "remove":
        return {"remove": sorted("%s:%d" % (ip_str(a.ip), a.port)
                                 for a in u.remove.addrs)}
    if k == "no_endpoints":
        return {"no_endpoints": {"exists": u.no_endpoints.exists}}
    return {"empty": True}


def dur(d):
    return d.seconds + d.nanos / 1e9


def norm_profile(p):
    routes = []
    for r in p.routes:
        c = r.condition
        routes.append({
            "method": c.method,
            "path": ({c.path.WhichOneof("kind"):
                      getattr(c.path, c.path.WhichOneof("kind"))}
                     if c.HasField("path") else None),
            "labels": dict(r.metrics_labels),
            "retryable": r.is_retryable,
            "timeout": dur(r.timeout) if r.HasField("timeout") else None})
    d = {"fqn": p.fully_qualified_name, "routes": routes,
         "opaque": p.opaque_protocol}
    if p.HasField("retry_budget"):
        b = p.retry_budget
        d["budget"] = {"ratio": round(b.retry_ratio, 6),
                       "min": b.min_retries_per_second, "ttl": dur(b.ttl)}
    return d


def stub_for(stubdir, addr):
    sys.path.insert(0, stubdir)
    import grpc
    import destination_pb2 as pb
    import destination_pb2_grpc as pbg
    ch = grpc.insecure_channel(addr)
    return grpc, pb, pbg.DestinationStub(ch), ch


def call(stubdir, addr, kind, path, secs):
    grpc, pb, stub, _ = stub_for(stubdir, addr)
    rpc = stub.Get if kind == "get" else stub.GetProfile
    norm = norm_update if kind == "get" else norm_profile
    return grpc, rpc(pb.GetDestination(path=path), timeout=secs), norm


def main():
    stubdir, cmd = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    if cmd == "expect":
        out, n, expr = a[0], int(a[1]), a[2]
        secs = float(a[3]) if len(a) > 3 else 3.0
        end = time.time() + secs
        ms = []
        while True:
            try:
                with open(out) as f:
                    ms = [json.loads(x) for x in f if x.endswith("\n")]
            except FileNotFoundError:
                ms = []
            if len(ms) >= n or time.time() > end:
                break
            time.sleep(0.02)
        if len(ms) < n:
            print("only %d message(s) after %.1fs: %s" % (len(ms), secs, ms))
            sys.exit(1)
        m = ms[n - 1]
        if not eval("(" + expr + "\n)", {"m": m, "ms": ms}):
            print("message %d: %s" % (n, json.dumps(m, sort_keys=True)))
            sys.exit(1)
        return
    if cmd == "watch":
        addr, kind, path, out = a[0], a[1], a[2], a[3]
        secs = float(a[4]) if len(a) > 4 else 600
        grpc, it, norm = call(stubdir, addr, kind, path, secs)
        with open(out, "a") as f:
            try:
                for msg in it:
                    d = norm(msg)
                    d["t"] = time.time()
                    f.write(json.dumps(d, sort_keys=True) + "\n")
                    f.flush()
            except grpc.RpcError as e:
                f.write(json.dumps({"status": e.code().name,
                                    "details": e.details(),
                                    "t": time.time()}) + "\n")
        return
    if cmd in ("once", "status"):
        addr, kind, path = a[0], a[1], a[2]
        secs = float(a[3]) if len(a) > 3 else 5
        grpc, it, norm = call(stubdir, addr, kind, path, secs)
        try:
            for msg in it:
                if cmd == "once":
                    print(json.dumps(norm(msg), sort_keys=True))
                    it.cancel()
                    return
            print("status OK")
        except grpc.RpcError as e:
            print("status %s %s" % (e.code().name, e.details()))
        return
    if cmd == "raw":
        addr, method, hexbytes = a[0], a[1], a[2]
        secs = float(a[3]) if len(a) > 3 else 5
        grpc, pb, _, ch = stub_for(stubdir, addr)
        rpc = ch.unary_stream(method, request_serializer=lambda x: x,
                              response_deserializer=lambda x: x)
        try:
            for _ in rpc(bytes.fromhex(hexbytes), timeout=secs):
                pass
            print("status OK")
        except grpc.RpcError as e:
            print("status %s %s" % (e.code().name, e.details()))
        return
    if cmd == "many":
        addr, path, n = a[0], a[1], int(a[2])
        grpc, pb, stub, _ = stub_for(stubdir, addr)
        its = [stub.Get(pb.GetDestination(path=path), timeout=120)
               for _ in range(n)]
        got = 0
        for it in its:
            next(it)
            got += 1
        print("first %d" % got, flush=True)
        time.sleep(120)
        return
    sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
