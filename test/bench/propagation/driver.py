#!/usr/bin/python3
"""test/bench/propagation/driver.py: the measuring half of
test/bench/propagation.sh (stdlib only; run with /usr/bin/python3).

  driver.py gen    --registry PATH --services N --endpoints M --port P
                   [--layout file|dir] [--format json|yaml]
  driver.py run    --registry PATH --services N --endpoints M --port P
                   [--layout file|dir] [--format json|yaml]
                   --proxy HOST:PORT --controller-pid PID --proxy-pid PID
                   --controller-log FILE --label NAME --out FILE.json
                   [--resolve 100] [--changes 100] [--spacing-ms 300]
                   [--timeout-ms 5000]
  driver.py report FILE.json...

The registry: services svc-0 .. svc-(N-1) in namespace "bench", port 80 ->
target_port P, selector app=svc-I; M workloads per service (svc-I-J, one
address each, meshed: false so that the proxy speaks plain HTTP/1.1 to
them). Workload addresses are 127.1.X.Y (I*M+J numbered from 1), the new
addresses of the changes 127.2.X.Y: all loopback, served by the one origin
listening on 0.0.0.0:P, which answers with its local address.
The format (JSON or YAML) follows the file name's extension.
--layout dir: PATH is a directory holding one fragment per service,
svc-I.<format> (default yaml), with the service and its M workloads; a
change rewrites that one file (written to the hidden .svc-I.<ext>.tmp,
then renamed over it).

run: resolves services 0 .. resolve-1 through the proxy (one request each,
checking that the answer comes from one of the service's addresses),
samples VmRSS/VmHWM of the controller and the proxy, then makes the
changes: change K replaces the endpoint set of service K % resolve by one
new address (the whole file is written to a temporary name, then renamed
over the registry) and polls that service through the proxy, requests back
to back on one keep-alive connection, until the answer comes from the new
address. propagation = first such answer - the instant before rename(2).
The controller's log lines give the instant each generation was parsed
("registry FILE generation N") and, at debug level for
controller.destination, when the Destination service applied it to its
watchers; both are compared with the rename instants (CLOCK_REALTIME on
both sides).
"""
import argparse
import datetime
import http.client
import json
import math
import os
import re
import sys
import time

NS = "bench"


def addr_of(base, n):
    """The n-th address (n >= 1) of the 127.<base>.0.0/16 block."""
    n -= 1
    return "127.%d.%d.%d" % (base, n // 250, n % 250 + 1)


class Registry:
    """The registry's contents; text() renders them as JSON or YAML."""

    def __init__(self, services, endpoints, port, fmt):
        self.port = port
        self.fmt = fmt
        self.nservices = services
        # per service: list of (workload name, address)
        self.wl = []
        for i in range(services):
            self.wl.append([("svc-%d-%d" % (i, j),
                             addr_of(1, i * endpoints + j + 1))
                            for j in range(endpoints)])

    def addrs(self, i):
        return {a for _, a in self.wl[i]}

    def replace(self, i, name, addr):
        self.wl[i] = [(name, addr)]

    def text(self, only=None):
        """The whole registry, or (only=I) the fragment of service I."""
        svcs = range(self.nservices) if only is None else [only]
        if self.fmt == "json":
            return self._json(svcs)
        return self._yaml(svcs)

    def _json(self, svcs):
        doc = {"services": [], "workloads": []}
        for i in svcs:
            doc["services"].append({
                "name": "svc-%d" % i, "namespace": NS,
                "ports": [{"port": 80, "target_port": self.port}],
                "selector": {"app": "svc-%d" % i}})
        for i in svcs:
            for name, a in self.wl[i]:
                doc["workloads"].append({
                    "name": name, "namespace": NS, "addresses": [a],
                    "labels": {"app": "svc-%d" % i}, "meshed": False})
        return json.dumps(doc, indent=2) + "\n"

    def _yaml(self, svcs):
        out = ["services:\n"]
        for i in svcs:
            out.append("  - name: svc-%d\n"
                       "    namespace: %s\n"
                       "    ports:\n"
                       "      - port: 80\n"
                       "        target_port: %d\n"
                       "    selector: {app: svc-%d}\n"
                       % (i, NS, self.port, i))
        out.append("workloads:\n")
        for i in svcs:
            for name, a in self.wl[i]:
                out.append("  - name: %s\n"
                           "    namespace: %s\n"
                           "    addresses: [\"%s\"]\n"
                           "    labels: {app: svc-%d}\n"
                           "    meshed: false\n" % (name, NS, a, i))
        return "".join(out)


def fmt_of(a):
    if a.layout == "dir":
        return a.format or "yaml"
    return "json" if a.registry.endswith(".json") else "yaml"


def write_atomic(path, text):
    """Writes text to a hidden temporary name next to path (.NAME.tmp:
    neither a fragment nor the registry file); returns that name (not
    renamed)."""
    d, b = os.path.split(path)
    tmp = os.path.join(d, "." + b + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    return tmp


def fragment_path(a, i):
    """The file a change of service i rewrites: the registry file, or
    (layout dir) the service's fragment."""
    if a.layout == "dir":
        return os.path.join(a.registry, "svc-%d.%s" % (i, fmt_of(a)))
    return a.registry


def write_registry(a, reg, i=None):
    """Writes the registry (or, layout dir and i given, the fragment of
    service i) to a temporary name; returns (temporary, final) names."""
    if a.layout == "dir" and i is not None:
        dst = fragment_path(a, i)
        return write_atomic(dst, reg.text(only=i)), dst
    return write_atomic(a.registry, reg.text()), a.registry


def registry_bytes(a):
    if a.layout != "dir":
        return os.path.getsize(a.registry), 1
    names = [n for n in os.listdir(a.registry) if not n.startswith(".")]
    return (sum(os.path.getsize(os.path.join(a.registry, n))
                for n in names), len(names))


def sched(pid):
    """(ns on a CPU, ns waiting for one) of pid from /proc/PID/schedstat:
    nanosecond CPU time, and the run-queue delay the machine's other load
    caused."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            v = f.read().split()
        return int(v[0]), int(v[1])
    except (OSError, ValueError, IndexError):
        return 0, 0


def proc_mem(pid):
    """(VmRSS, VmHWM) in KiB of pid, or (None, None)."""
    rss = hwm = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class Client:
    """One keep-alive HTTP/1.1 connection to the proxy's outbound listener."""

    def __init__(self, hostport):
        h, p = hostport.rsplit(":", 1)
        self.h, self.p = h, int(p)
        self.c = None
        self.reconnects = 0

    def get(self, authority):
        """(status, body) or (None, error text)."""
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.h, self.p,
                                                    timeout=5)
                self.reconnects += attempt
            try:
                self.c.putrequest("GET", "/", skip_host=True,
                                  skip_accept_encoding=True)
                self.c.putheader("Host", authority)
                self.c.endheaders()
                r = self.c.getresponse()
                body = r.read().decode("ascii", "replace").strip()
                if r.will_close:
                    self.c.close()
                    self.c = None
                return r.status, body
            except (OSError, http.client.HTTPException) as e:
                self.c.close()
                self.c = None
                err = "%s: %s" % (type(e).__name__, e)
        return None, err


def metrics_size(hostport, dump=""):
    """[bytes, series lines] of the /metrics page at hostport (the page
    is also written to dump when given)."""
    h, p = hostport.rsplit(":", 1)
    try:
        c = http.client.HTTPConnection(h, int(p), timeout=5)
        c.request("GET", "/metrics")
        body = c.getresponse().read()
        c.close()
    except (OSError, http.client.HTTPException):
        return None
    if dump:
        with open(dump, "wb") as f:
            f.write(body)
    lines = [x for x in body.split(b"\n") if x and not x.startswith(b"#")]
    return [len(body), len(lines)]


def authority(i):
    return "svc-%d.%s:80" % (i, NS)


def cmd_gen(a):
    reg = Registry(a.services, a.endpoints, a.port, fmt_of(a))
    if a.layout == "dir":
        os.makedirs(a.registry, exist_ok=True)
        for i in range(a.services):
            tmp, dst = write_registry(a, reg, i)
            os.rename(tmp, dst)
        return 0
    tmp, dst = write_registry(a, reg)
    os.rename(tmp, dst)
    return 0


LOG_TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
GEN_RE = re.compile(r"registry \S+ generation (\d+): (\d+) services, "
                    r"(\d+) workloads, (\d+) endpoints")
APPLY_RE = re.compile(r"registry generation (\d+): (\d+) of (\d+) watched "
                      r"keys changed, (\d+) streams told")
# directory mode: "... endpoints (N files, M parsed, union X ms)"
UNION_RE = re.compile(r"\((\d+) files, (\d+) parsed, union ([\d.]+) ms\)")


def log_ts(line):
    m = LOG_TS.search(line)
    if not m:
        return None
    d = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def controller_log(path):
    """{generation: parsed ts}, {generation: applied ts}, first-load info,
    {generation: (files parsed, union ms)} (directory mode)."""
    parsed, applied, first, union = {}, {}, None, {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = GEN_RE.search(line)
                if m:
                    g = int(m.group(1))
                    parsed[g] = log_ts(line)
                    if g == 1:
                        first = [int(x) for x in m.groups()[1:]]
                    u = UNION_RE.search(line)
                    if u:
                        union[g] = (int(u.group(2)), float(u.group(3)))
                    continue
                m = APPLY_RE.search(line)
                if m:
                    applied[int(m.group(1))] = log_ts(line)
    except OSError:
        pass
    return parsed, applied, first, union


def pct(xs, p):
    """Nearest-rank percentile of xs (None when empty)."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p90": pct(xs, 90),
            "p99": pct(xs, 99), "max": max(xs) if xs else None,
            "min": min(xs) if xs else None}


def cmd_run(a):
    reg = Registry(a.services, a.endpoints, a.port, fmt_of(a))
    cl = Client(a.proxy)
    nbytes, nfiles = registry_bytes(a)
    res = {"label": a.label, "format": reg.fmt, "services": a.services,
           "endpoints_per_service": a.endpoints,
           "workloads": a.services * a.endpoints,
           "resolve": a.resolve, "changes": a.changes,
           "spacing_ms": a.spacing_ms, "registry_bytes": nbytes,
           "layout": a.layout, "files": nfiles, "errors": []}

    # resolve: one request per service; the proxy's VmRSS along the way
    curve = [(0, proc_mem(a.proxy_pid)[0])]
    marks = {1, 10, 50, a.resolve}
    t0 = time.monotonic()
    for i in range(a.resolve):
        st, body = cl.get(authority(i))
        if st != 200 or body not in reg.addrs(i):
            res["errors"].append("resolve svc-%d: %s %s" % (i, st, body))
        if i + 1 in marks:
            curve.append((i + 1, proc_mem(a.proxy_pid)[0]))
    res["resolve_s"] = round(time.monotonic() - t0, 3)
    res["proxy_rss_curve_kib"] = curve
    time.sleep(1.0)
    res["rss_resolved_kib"] = {
        "controller": proc_mem(a.controller_pid),
        "proxy": proc_mem(a.proxy_pid)}

    # changes
    samples = []
    t_changes = time.monotonic()
    res["stopped_by_budget"] = False
    for k in range(a.changes):
        if a.budget_s and time.monotonic() - t_changes > a.budget_s:
            res["stopped_by_budget"] = True
            res["errors"].append("time budget (%d s) over after %d of %d "
                                 "changes" % (a.budget_s, k, a.changes))
            break
        i = k % a.resolve
        new = addr_of(2, k + 1)
        st, body = cl.get(authority(i))   # warm, and the old set answers
        if st != 200 or body not in reg.addrs(i):
            res["errors"].append("change %d before: svc-%d %s %s"
                                 % (k, i, st, body))
        reg.replace(i, "svc-%d-n%d" % (i, k), new)
        tmp, dst = write_registry(a, reg, i)
        polls = bad = 0
        c0, p0 = sched(a.controller_pid), sched(a.proxy_pid)
        t_real = time.time()
        t_mono = time.monotonic()
        os.rename(tmp, dst)
        deadline = t_mono + a.timeout_ms / 1000.0
        got = None
        while True:
            st, body = cl.get(authority(i))
            now = time.monotonic()
            polls += 1
            if st == 200 and body == new:
                got = now
                break
            if st != 200:
                bad += 1
            if now > deadline:
                break
        c1, p1 = sched(a.controller_pid), sched(a.proxy_pid)
        s = {"k": k, "svc": i, "new": new, "rename_real": t_real,
             "ctl_cpu_ms": round((c1[0] - c0[0]) / 1e6, 3),
             "ctl_wait_ms": round((c1[1] - c0[1]) / 1e6, 3),
             "px_cpu_ms": round((p1[0] - p0[0]) / 1e6, 3),
             "polls": polls, "non_200": bad,
             "ms": round((got - t_mono) * 1000.0, 3) if got else None}
        if got is None:
            res["errors"].append("change %d: svc-%d never answered from "
                                 "%s within %d ms" % (k, i, new,
                                                      a.timeout_ms))
        if bad:
            res["errors"].append("change %d: %d non-200 answers while "
                                 "polling" % (k, bad))
        samples.append(s)
        time.sleep(a.spacing_ms / 1000.0)
    time.sleep(0.5)
    res["rss_after_kib"] = {
        "controller": proc_mem(a.controller_pid),
        "proxy": proc_mem(a.proxy_pid)}
    res["reconnects"] = cl.reconnects
    # last: rendering the page costs the proxy memory of its own
    if a.proxy_admin:
        res["proxy_metrics"] = metrics_size(a.proxy_admin, a.metrics_dump)

    # the controller's view: generation 1 is the initial load, change K is
    # generation K + 2 when every rename was seen as one reload
    parsed, applied, first, union = controller_log(a.controller_log)
    res["first_load"] = first
    res["generations_seen"] = max(parsed) if parsed else 0
    for s in samples:
        g = s["k"] + 2
        if g in union:
            s["files_parsed"], s["union_ms"] = union[g]
        if g in parsed and parsed[g] is not None:
            s["parsed_ms"] = round((parsed[g] - s["rename_real"]) * 1000, 3)
        if g in applied and applied[g] is not None:
            s["applied_ms"] = round((applied[g] - s["rename_real"]) * 1000,
                                    3)
    res["samples"] = samples
    prop = [s["ms"] for s in samples if s["ms"] is not None]
    res["changes_made"] = len(samples)
    res["propagation_ms"] = summary(prop)
    res["parsed_ms"] = summary([s["parsed_ms"] for s in samples
                                if "parsed_ms" in s])
    res["applied_ms"] = summary([s["applied_ms"] for s in samples
                                 if "applied_ms" in s])
    res["apply_to_answer_ms"] = summary(
        [s["ms"] - s["applied_ms"] for s in samples
         if s["ms"] is not None and "applied_ms" in s])
    res["polls"] = summary([s["polls"] for s in samples])
    res["union_ms"] = summary([s["union_ms"] for s in samples
                               if "union_ms" in s])
    res["files_parsed"] = summary([s["files_parsed"] for s in samples
                                   if "files_parsed" in s])
    for key in ("ctl_cpu_ms", "ctl_wait_ms", "px_cpu_ms"):
        res[key] = summary([s[key] for s in samples if s["ms"] is not None])
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    # a stop by the time budget leaves valid samples: not a failure
    return 1 if len(res["errors"]) > int(res["stopped_by_budget"]) else 0


def mb(kib):
    return "-" if kib is None else "%.1f" % (kib * 1024 / 1e6)


def ms(v):
    return "-" if v is None else "%.1f" % v


def cmd_report(a):
    rs = []
    for p in a.files:
        with open(p) as f:
            rs.append(json.load(f))
    o = []
    o.append("| registry | services × endpoints | file | p50 | p90 | p99 "
             "| max | changes seen |")
    o.append("|---|---|---|---|---|---|---|---|")
    for r in rs:
        p = r["propagation_ms"]
        size = "%.2f MB" % (r["registry_bytes"] / 1e6)
        if r.get("layout") == "dir":
            size += " in %d files" % r.get("files", 0)
        o.append("| %s | %d × %d | %s | %s | %s | %s | %s | %d/%d |" % (
            r["label"], r["services"], r["endpoints_per_service"],
            size, ms(p["p50"]), ms(p["p90"]),
            ms(p["p99"]), ms(p["max"]), p["n"], r["changes"]))
    o.append("")
    o.append("Propagation = first answer from the new address − the instant "
             "before rename(2), ms (nearest-rank percentiles).")
    o.append("")
    o.append("Where the time goes (ms after the rename; from the "
             "controller's log, p50 / p99 / max):")
    o.append("")
    o.append("| registry | parsed (detect + read + parse) | applied "
             "(+ bus + diff) | applied → first new answer | controller "
             "CPU | controller run-queue wait |")
    o.append("|---|---|---|---|---|---|")
    for r in rs:
        a1, a2, a3 = r["parsed_ms"], r["applied_ms"], r["apply_to_answer_ms"]
        c, w = r["ctl_cpu_ms"], r["ctl_wait_ms"]
        o.append("| %s | %s / %s / %s | %s / %s / %s | %s / %s / %s "
                 "| %s / %s / %s | %s / %s / %s |" % (
                     r["label"], ms(a1["p50"]), ms(a1["p99"]), ms(a1["max"]),
                     ms(a2["p50"]), ms(a2["p99"]), ms(a2["max"]),
                     ms(a3["p50"]), ms(a3["p99"]), ms(a3["max"]),
                     ms(c["p50"]), ms(c["p99"]), ms(c["max"]),
                     ms(w["p50"]), ms(w["p99"]), ms(w["max"])))
    o.append("")
    o.append("Controller CPU and run-queue wait: from /proc/PID/schedstat "
             "between the rename and the first new answer (the reload's own "
             "cost, and the delay other load on its CPU added).")
    du = [r for r in rs if r.get("union_ms", {}).get("n")]
    if du:
        o.append("")
        o.append("Directory registries, from the controller's log: " +
                 "; ".join("%s: files parsed per change p50 %s (max %s), "
                           "union + resolution p50 / p99 / max %s / %s / "
                           "%s ms" % (
                               r["label"], ms(r["files_parsed"]["p50"]),
                               ms(r["files_parsed"]["max"]),
                               ms(r["union_ms"]["p50"]),
                               ms(r["union_ms"]["p99"]),
                               ms(r["union_ms"]["max"])) for r in du) + ".")
    o.append("")
    o.append("Memory (MB = 10^6 bytes; VmRSS current / VmHWM peak):")
    o.append("")
    o.append("| registry | controller, 100 services resolved | controller, "
             "after the changes | proxy, 100 services resolved | proxy, "
             "after the changes |")
    o.append("|---|---|---|---|---|")
    for r in rs:
        c0, p0 = r["rss_resolved_kib"]["controller"], \
            r["rss_resolved_kib"]["proxy"]
        c1, p1 = r["rss_after_kib"]["controller"], r["rss_after_kib"]["proxy"]
        o.append("| %s | %s / %s | %s / %s | %s / %s | %s / %s |" % (
            r["label"], mb(c0[0]), mb(c0[1]), mb(c1[0]), mb(c1[1]),
            mb(p0[0]), mb(p0[1]), mb(p1[0]), mb(p1[1])))
    o.append("")
    o.append("Proxy VmRSS (MB) by services resolved: " + "; ".join(
        "%s: %s" % (r["label"], ", ".join(
            "%d → %s" % (n, mb(k)) for n, k in r["proxy_rss_curve_kib"]))
        for r in rs) + ".")
    pm = [(r["label"], r.get("proxy_metrics")) for r in rs
          if r.get("proxy_metrics")]
    if pm:
        o.append("Proxy /metrics after the changes: " + "; ".join(
            "%s: %d series, %.0f kB" % (lab, m[1], m[0] / 1e3)
            for lab, m in pm) + ".")
    errs = [(r["label"], e) for r in rs for e in r["errors"]]
    o.append("")
    if errs:
        o.append("Errors (%d; a row with errors is not a clean "
                 "measurement):" % len(errs))
        for lab, e in errs[:40]:
            o.append("- %s: %s" % (lab, e))
    else:
        o.append("No errors: every resolution answered from the service's "
                 "endpoints, every change was seen, no non-200 answer while "
                 "polling.")
    print("\n".join(o))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("gen", "run"):
        p = sub.add_parser(name)
        p.add_argument("--registry", required=True)
        p.add_argument("--services", type=int, default=1000)
        p.add_argument("--endpoints", type=int, default=10)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--layout", choices=("file", "dir"), default="file")
        p.add_argument("--format", choices=("json", "yaml"), default="",
                       help="fragments' format (layout dir; default yaml)")
        if name == "run":
            p.add_argument("--proxy", required=True)
            p.add_argument("--controller-pid", type=int, required=True)
            p.add_argument("--proxy-pid", type=int, required=True)
            p.add_argument("--proxy-admin", default="")
            p.add_argument("--metrics-dump", default="")
            p.add_argument("--controller-log", required=True)
            p.add_argument("--label", required=True)
            p.add_argument("--out", required=True)
            p.add_argument("--resolve", type=int, default=100)
            p.add_argument("--changes", type=int, default=100)
            p.add_argument("--spacing-ms", type=int, default=300)
            p.add_argument("--timeout-ms", type=int, default=5000)
            p.add_argument("--budget-s", type=int, default=0,
                           help="stop making changes after this (0: none)")
    p = sub.add_parser("report")
    p.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd == "run" and not 0 < a.resolve <= a.services:
        ap.error("--resolve must be 1..services")
    return {"gen": cmd_gen, "run": cmd_run, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
