#!/usr/bin/env python3
"""Queries a Prometheus text exposition, for test/e2e/proxy_pods.sh.

  mq.py FILE NAME [LABEL=VALUE ...]
    prints the sum of the samples of metric NAME (exactly that name, e.g.
    response_latency_ms_count) whose labels include every LABEL=VALUE given
    (LABEL!= matches a series without that label), "0" when none matches;
    on stderr, the matching series.
"""
import re, sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def labels(s):
    out, pos = {}, 0
    while s and pos < len(s):
        m = LABEL.match(s, pos)
        if not m:
            raise ValueError("bad labels: " + s)
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


want = {}
for a in sys.argv[3:]:
    k, _, v = a.partition("=")
    if k.endswith("!"):
        want[k[:-1]] = None
    else:
        want[k] = v
total = 0.0
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        continue
    m = SAMPLE.match(line)
    if not m or m.group(1) != sys.argv[2]:
        continue
    ls = labels(m.group(3) or "")
    if all((k not in ls) if v is None else (ls.get(k) == v) for k, v in want.items()):
        total += float(m.group(4))
        print(line, file=sys.stderr)
print(int(total) if total == int(total) else total)
