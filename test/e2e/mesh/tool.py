#!/usr/bin/env python3
"""Helpers for test/e2e/mesh.sh (the mesh end-to-end tests).

  tool.py reg OUT NET SVC=PODS...
      writes the registry (JSON, docs/registry.md) to OUT atomically (a
      temporary file renamed over OUT). NET is the pods' /24 prefix
      ("10.217.0"): pod sN has address NET.(10+N). SVC=PODS puts the pods
      (comma list, e.g. s1,s2,s3; empty for none) in service SVC; the
      services and their routes are SERVICES below.

  tool.py churn OUT NET SECONDS PERIOD SVC FIXED CHURNED SVC=PODS...
      rewrites OUT (as `reg`) every PERIOD seconds for SECONDS seconds: SVC
      always holds the FIXED pods, and each step adds or removes 1 to 3 of
      the CHURNED pods (so every write changes the endpoint set); the other
      services stay as given. Prints "writes N adds A removes R" at the
      end.

  tool.py mq FILE NAME [LABEL=VALUE...]
      the sum of the samples of metric NAME in the Prometheus text FILE
      whose labels include every LABEL=VALUE ("0" when none matches).

  tool.py lg FILE EXPR
      evaluates the Python expression EXPR over d, loadgen's --json object
      read from FILE, and prints the result.

Only the standard library; never touches anything but OUT and its
temporary file.
"""
import json
import os
import random
import re
import sys
import time

NS = "demo"

# name -> (target port, routes). Every service listens on port 8080.
SERVICES = {
    # 1: three endpoints, one killed
    "web": (8081, []),
    # 2: eleven endpoints, one turning slow; the route's 1 s timeout
    "slow": (8080, [{"name": "hello", "method": "GET", "path_exact": "/hello",
                     "timeout": "1s"}]),
    # 3: the controller killed and restarted
    "ctl": (8080, []),
    # 4: churned endpoints
    "churn": (8080, []),
    # 5: one of 3 endpoints fails 30 % of /hello: retried, and not retried
    "flaky": (8082, [{"name": "hello", "method": "GET", "path_exact": "/hello",
                      "retryable": True, "timeout": "5s"}]),
    "flakynr": (8082, [{"name": "hello", "method": "GET",
                        "path_exact": "/hello", "timeout": "5s"}]),
}


def registry(net, members):
    """The registry document: members maps service -> list of pod names."""
    services, pods = [], {}
    for name, (tport, routes) in SERVICES.items():
        svc = {"name": name, "namespace": NS,
               "ports": [{"port": 8080, "target_port": tport,
                          "protocol": "http"}],
               "selector": {"svc-" + name: "y"},
               "retry_budget": {"ratio": 0.2, "min_per_second": 10,
                                "ttl": "10s"}}
        if routes:
            svc["routes"] = routes
        services.append(svc)
        for p in members.get(name, []):
            pods.setdefault(p, {})["svc-" + name] = "y"
    workloads = []
    for p in sorted(pods, key=lambda s: int(s[1:])):
        labels = dict(pods[p])
        labels["pod"] = p
        workloads.append({"name": p, "namespace": NS,
                          "service_account": "abc",
                          "addresses": ["%s.%d" % (net, 10 + int(p[1:]))],
                          "labels": labels})
    return {"services": services, "workloads": workloads}


def put(out, doc):
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.chmod(tmp, 0o644)
    os.rename(tmp, out)


def parse_members(args):
    members = {}
    for a in args:
        k, _, v = a.partition("=")
        if k not in SERVICES:
            sys.exit("tool.py: unknown service %r" % k)
        members[k] = [p for p in v.split(",") if p]
    return members


def cmd_reg(argv):
    out, net = argv[0], argv[1]
    put(out, registry(net, parse_members(argv[2:])))


def cmd_churn(argv):
    out, net, secs, period, svc = argv[0], argv[1], float(argv[2]), \
        float(argv[3]), argv[4]
    fixed = [p for p in argv[5].split(",") if p]
    churned = [p for p in argv[6].split(",") if p]
    members = parse_members(argv[7:])
    rng = random.Random(4)
    cur = set()
    writes = adds = removes = 0
    t0 = time.monotonic()
    nxt = t0
    while time.monotonic() - t0 < secs:
        for p in rng.sample(churned, rng.randint(1, min(3, len(churned)))):
            if p in cur:
                cur.discard(p)
                removes += 1
            else:
                cur.add(p)
                adds += 1
        members[svc] = fixed + sorted(cur, key=lambda s: int(s[1:]))
        put(out, registry(net, members))
        writes += 1
        nxt += period
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
    print("writes %d adds %d removes %d" % (writes, adds, removes))


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def cmd_mq(argv):
    want = dict(a.partition("=")[::2] for a in argv[2:])
    total = 0.0
    with open(argv[0]) as f:
        for line in f:
            m = SAMPLE.match(line.strip())
            if not m or m.group(1) != argv[1]:
                continue
            labels = dict(LABEL.findall(m.group(3) or ""))
            if all(labels.get(k) == v for k, v in want.items()):
                total += float(m.group(4))
    print(int(total) if total == int(total) else total)


def cmd_lg(argv):
    try:
        with open(argv[0]) as f:
            d = json.loads([l for l in f.read().splitlines()
                            if l.startswith("{")][-1])
    except (OSError, ValueError, IndexError):
        print("?")
        return
    print(eval(argv[1], {}, {"d": d}))


def main():
    cmds = {"reg": cmd_reg, "churn": cmd_churn, "mq": cmd_mq, "lg": cmd_lg}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
