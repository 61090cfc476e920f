#!/usr/bin/python3
"""Golden protobuf vectors for meshd's codec (core/pb, core/api_pb).

The reference is Python's protobuf runtime (Debian python3-protobuf) on
stubs generated at run time from api/destination.proto with
`python3 -m grpc_tools.protoc` (Debian python3-grpc-tools).

Modes:
  gen_pb_vectors.py --out FILE        write test/unit/pb_vectors.h
  gen_pb_vectors.py --verify-header F check a committed pb_vectors.h against
                                      the runtime: every vector decodes to
                                      the same message, bad ones are refused,
                                      the set of vectors is the same
  gen_pb_vectors.py --verify-dump F   check meshd's encodings: F has lines
                                      "<name> <type> <hex>" (written by the
                                      unit tests with MESHD_PB_DUMP=F); each
                                      must decode to the vector's message

Three kinds of vectors:
  good  a message built here; bytes = SerializeToString(deterministic=True)
        (map keys sorted); meshd must decode them to the values t_pb.c
        builds, and its own encoding must decode (here) to the same message
  raw   hand-made bytes (unknown fields, merges, non-minimal varints...)
        that the runtime parses to the expected message; meshd must too
  bad   bytes the runtime refuses; meshd must refuse them too
Messages are compared with ==, i.e. by value, never by bytes: field order
and map order may differ legitimately between encoders.
"""
import atexit
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def load_stubs():
    out = tempfile.mkdtemp(prefix="meshd-pb-")
    # the generated module is imported once; the directory goes at exit
    atexit.register(shutil.rmtree, out, True)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc",
                    "-I" + os.path.join(TOP, "api"), "--python_out=" + out,
                    os.path.join(TOP, "api", "destination.proto")],
                   check=True)
    sys.path.insert(0, out)
    import destination_pb2
    return destination_pb2


pb = load_stubs()


def v4(a, b, c, d):
    return bytes([a, b, c, d])


V6 = bytes.fromhex("fd000000000000000000000000000001")


def waddr(ip, port, weight, labels, ident=None, hint=None):
    w = pb.WeightedAddr(weight=weight)
    w.addr.ip = ip
    w.addr.port = port
    for k, v in labels.items():
        w.metric_labels[k] = v
    if ident is not None:
        w.tls_identity.dns_like_identity.name = ident
    if hint == "h2":
        w.protocol_hint.h2.SetInParent()
    elif hint == "opaque":
        w.protocol_hint.opaque.SetInParent()
    return w


def good():
    v = []
    v.append(("get_destination", "GetDestination", pb.GetDestination(
        scheme="k8s", path="web.emojivoto.svc.cluster.local:8080",
        context_token='{"ns":"emojivoto","pod":"vote-bot-1"}')))
    v.append(("get_destination_empty", "GetDestination",
              pb.GetDestination()))
    v.append(("get_destination_long", "GetDestination", pb.GetDestination(
        scheme="registry", path="\u00fcn\u00efc\u00f8de-\u2603.ns:80",
        context_token="x" * 300)))
    u = pb.Update()
    u.add.addrs.append(waddr(v4(10, 0, 0, 1), 8080, 10000,
                             {"pod": "web-1", "zone": "a"},
                             "web.emojivoto.serviceaccount.identity.meshd."
                             "cluster.local", "h2"))
    u.add.addrs.append(waddr(V6, 65535, 0, {}, None, "opaque"))
    u.add.metric_labels["namespace"] = "emojivoto"
    u.add.metric_labels["service"] = "web"
    v.append(("update_add", "Update", u))
    u = pb.Update()
    u.remove.addrs.add(ip=v4(10, 0, 0, 1), port=8080)
    u.remove.addrs.add(ip=V6, port=1)
    u.remove.addrs.add()
    v.append(("update_remove", "Update", u))
    u = pb.Update()
    u.no_endpoints.exists = False
    u.no_endpoints.SetInParent()
    v.append(("update_no_endpoints", "Update", u))
    v.append(("update_no_endpoints_exists", "Update",
              pb.Update(no_endpoints=pb.NoEndpoints(exists=True))))
    u = pb.Update()
    u.add.SetInParent()
    v.append(("update_add_empty", "Update", u))
    p = pb.DestinationProfile(
        fully_qualified_name="web.emojivoto.svc.cluster.local")
    r = p.routes.add(is_retryable=True)
    r.condition.path.prefix = "/api/"
    r.condition.method = "GET"
    r.metrics_labels["route"] = "api"
    r.timeout.seconds = 1
    r.timeout.nanos = 500000000
    r = p.routes.add()
    r.condition.path.exact = "/healthz"
    r.metrics_labels["route"] = "health"
    r.metrics_labels["kind"] = "probe"
    p.retry_budget.retry_ratio = 0.2
    p.retry_budget.min_retries_per_second = 10
    p.retry_budget.ttl.seconds = 10
    v.append(("profile_routes", "DestinationProfile", p))
    p = pb.DestinationProfile(opaque_protocol=True)
    p.endpoint.CopyFrom(waddr(v4(192, 168, 1, 20), 3306, 4294967295,
                              {"pod": "db-0"}, "db.data.serviceaccount."
                              "identity.meshd.cluster.local", "opaque"))
    v.append(("profile_endpoint", "DestinationProfile", p))
    p = pb.DestinationProfile()
    r = p.routes.add()
    r.condition.path.exact = ""
    r.timeout.seconds = -5
    r.timeout.nanos = -1
    p.retry_budget.retry_ratio = -0.0
    p.retry_budget.ttl.seconds = -9223372036854775808
    p.retry_budget.ttl.nanos = -2147483648
    v.append(("profile_edge_values", "DestinationProfile", p))
    return v


def raw():
    """(name, type, bytes, expected message)"""
    v = []
    base = pb.GetDestination(scheme="k8s", path="a:1")
    b = base.SerializeToString()
    # unknown fields of every wire type, before and after known ones
    unk = (bytes.fromhex("f806") + bytes.fromhex("9601") +     # 111 varint
           bytes.fromhex("f1060102030405060708") +             # 110 i64
           bytes.fromhex("fd0601020304") +                     # 111 i32
           bytes.fromhex("fa0603616263") +                     # 111 len
           bytes.fromhex("a3070802ab070803ac07a407"))        # 116 group
    v.append(("raw_unknown_fields", "GetDestination", unk + b + unk, base))
    # a repeated scalar... none in the API; the last singular value wins
    v.append(("raw_last_wins", "GetDestination",
              bytes.fromhex("0a03787878") + b +
              bytes.fromhex("12036c6173"),
              pb.GetDestination(scheme="k8s", path="las")))
    # a singular sub-message split in two occurrences is merged
    w = pb.WeightedAddr()
    w.addr.ip = v4(1, 2, 3, 4)
    w.addr.port = 80
    w.weight = 7
    v.append(("raw_merge_submessage", "WeightedAddr",
              bytes.fromhex("0a060a0401020304") + bytes.fromhex("1807") +
              bytes.fromhex("0a021050"), w))
    # a oneof member replaces the previous one
    u = pb.Update(no_endpoints=pb.NoEndpoints(exists=True))
    v.append(("raw_oneof_switch", "Update",
              bytes.fromhex("0a00") + bytes.fromhex("1a020801"), u))
    # non-minimal varints, int32 in 5 bytes, bool from a large varint
    d = pb.Route(is_retryable=True)
    d.timeout.seconds = 0
    d.timeout.nanos = -1
    d.timeout.SetInParent()
    body = bytes.fromhex("10ffffffff0f")            # nanos = -1 (5 bytes)
    v.append(("raw_varint_forms", "Route",
              bytes.fromhex("20ff01") +                 # bool 255 -> true
              bytes.fromhex("2a") + bytes([len(body) + 3]) +
              bytes.fromhex("088000") + body,           # seconds 0 (2 bytes)
              d))
    # map entries: duplicate key (last wins), missing value, missing key
    s = pb.WeightedAddrSet()
    s.metric_labels["k"] = "2"
    s.metric_labels[""] = "v"
    s.metric_labels["n"] = ""
    v.append(("raw_map_forms", "WeightedAddrSet",
              bytes.fromhex("1206 0a016b 120131".replace(" ", "")) +
              bytes.fromhex("1206 0a016b 120132".replace(" ", "")) +
              bytes.fromhex("1203 120176".replace(" ", "")) +
              bytes.fromhex("1203 0a016e".replace(" ", "")),
              s))
    return v


def bad():
    """(name, type, bytes) that the runtime refuses"""
    return [
        ("bad_truncated_tag", "GetDestination", bytes.fromhex("8a")),
        ("bad_truncated_len", "GetDestination", bytes.fromhex("0a")),
        ("bad_len_past_end", "GetDestination", bytes.fromhex("0a0561")),
        ("bad_len_huge", "GetDestination",
         bytes.fromhex("0affffffffffffffff7f61")),
        ("bad_varint_11_bytes", "NoEndpoints",
         bytes.fromhex("08ffffffffffffffffffff01")),
        ("bad_utf8", "GetDestination", bytes.fromhex("1202c328")),
        ("bad_utf8_surrogate", "GetDestination", bytes.fromhex("1203eda080")),
        ("bad_truncated_fixed32", "RetryBudget", bytes.fromhex("0d0000")),
        ("bad_truncated_unknown_i64", "GetDestination",
         bytes.fromhex("f106010203")),
        ("bad_nested_len", "Update", bytes.fromhex("0a030a0561")),
        ("bad_nested_utf8", "DestinationProfile",
         bytes.fromhex("0a070a05220312ff41")),
        ("bad_wire_type_7", "GetDestination", bytes.fromhex("0f")),
        ("bad_unterminated_group", "GetDestination", bytes.fromhex("a3070801")),
        ("bad_group_mismatch", "GetDestination", bytes.fromhex("a307ac08")),
    ]


def message(typ):
    return getattr(pb, typ)()


def norm(m):
    """A message as plain Python values: present fields only (ListFields
    follows proto3 presence), maps as dictionaries (last entry wins; the
    C++ runtime's == would also compare duplicate entries it kept from the
    wire), floats as their bits (-0.0 is not 0.0 on the wire), unknown
    fields left out (meshd drops them)."""
    out = {}
    for fd, val in m.ListFields():
        mt = fd.message_type
        if mt is not None and mt.GetOptions().map_entry:
            vf = mt.fields_by_name["value"]
            out[fd.name] = {k: (norm(v) if vf.message_type else v)
                            for k, v in val.items()}
        elif fd.label == fd.LABEL_REPEATED:
            out[fd.name] = [norm(x) if mt else x for x in val]
        elif mt is not None:
            out[fd.name] = norm(val)
        elif fd.type == fd.TYPE_FLOAT:
            out[fd.name] = struct.pack("<f", val)
        elif fd.type == fd.TYPE_DOUBLE:
            out[fd.name] = struct.pack("<d", val)
        else:
            out[fd.name] = val
    return out


def same(a, b):
    """Equal by value (see norm)."""
    return type(a) is type(b) and norm(a) == norm(b)


def parse(typ, data):
    m = message(typ)
    m.ParseFromString(data)
    return m


def all_vectors():
    """[(name, type, bytes, ok, expected message or None)]"""
    out = []
    for name, typ, m in good():
        out.append((name, typ, m.SerializeToString(deterministic=True), 1, m))
    for name, typ, data, m in raw():
        out.append((name, typ, data, 1, m))
    for name, typ, data in bad():
        out.append((name, typ, data, 0, None))
    return out


def check_runtime(vecs):
    """The runtime agrees with the vector table itself."""
    for name, typ, data, ok, m in vecs:
        if ok:
            try:
                got = parse(typ, data)
            except Exception as e:
                sys.exit("%s: runtime refuses: %s" % (name, e))
            if not same(got, m):
                sys.exit("%s: runtime parses to %s, expected %s"
                         % (name, got, m))
        else:
            try:
                parse(typ, data)
            except Exception:
                continue
            sys.exit("%s: the runtime accepts a 'bad' vector" % name)


def c_header(vecs):
    lines = [
        "/*",
        " * Golden protobuf vectors for core/pb and core/api_pb, GENERATED by",
        " * test/unit/gen_pb_vectors.py from api/destination.proto with",
        " * Python's protobuf runtime. Do not edit: rerun",
        " *   /usr/bin/python3 test/unit/gen_pb_vectors.py --out "
        "test/unit/pb_vectors.h",
        " * ok = 1: the runtime parses <bytes> as <type>; ok = 0: it refuses",
        " * them. t_pb.c holds the values the ok vectors decode to.",
        " */",
        "#ifndef MESHD_TEST_PB_VECTORS_H",
        "#define MESHD_TEST_PB_VECTORS_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "struct pb_vector {",
        "\tconst char *name;",
        "\tconst char *type;       /* proto message name */",
        "\tconst uint8_t *bytes;",
        "\tsize_t len;",
        "\tint ok;",
        "};",
        "",
    ]
    for i, (name, typ, data, ok, m) in enumerate(vecs):
        lines.append("static const uint8_t pb_vec_%d[] = {  /* %s */"
                     % (i, name))
        if not data:
            lines.append("\t0 /* empty: len is 0 */")
        for j in range(0, len(data), 12):
            lines.append("\t" + ", ".join("0x%02x" % c
                                          for c in data[j:j + 12]) + ",")
        lines.append("};")
    lines.append("")
    lines.append("static const struct pb_vector pb_vectors[] = {")
    for i, (name, typ, data, ok, m) in enumerate(vecs):
        lines.append('\t{ "%s", "%s", pb_vec_%d, %d, %d },'
                     % (name, typ, i, len(data), ok))
    lines.append("};")
    lines.append("")
    lines.append("#endif")
    return "\n".join(lines) + "\n"


def read_header(path):
    """[(name, type, bytes, ok)] from a pb_vectors.h"""
    import re
    text = open(path).read()
    arrays = {}
    for m in re.finditer(r"pb_vec_(\d+)\[\] = \{[^\n]*\n(.*?)\};", text,
                         re.S):
        body = re.sub(r"/\*.*?\*/", "", m.group(2))
        arrays[int(m.group(1))] = bytes(int(x, 16) for x in
                                        re.findall(r"0x([0-9a-f]{2})", body))
    out = []
    for m in re.finditer(r'\{ "([a-z0-9_]+)", "(\w+)", pb_vec_(\d+), '
                         r'(\d+), ([01]) \}', text):
        data = arrays[int(m.group(3))][:int(m.group(4))]
        out.append((m.group(1), m.group(2), data, int(m.group(5))))
    return out


def main():
    vecs = all_vectors()
    check_runtime(vecs)
    if len(sys.argv) == 3 and sys.argv[1] == "--out":
        with open(sys.argv[2], "w") as f:
            f.write(c_header(vecs))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--verify-header":
        fresh = {v[0]: v for v in vecs}
        old = read_header(sys.argv[2])
        bad_n = 0
        if sorted(fresh) != sorted(v[0] for v in old):
            print("not ok - vector set differs: header %s, runtime %s"
                  % (sorted(v[0] for v in old), sorted(fresh)))
            bad_n += 1
        for name, typ, data, ok in old:
            f = fresh.get(name)
            if not f:
                continue
            if ok != f[3] or typ != f[1]:
                res = False
            elif ok:
                try:
                    res = same(parse(typ, data), f[4])
                except Exception:
                    res = False
            else:
                try:
                    parse(typ, data)
                    res = False
                except Exception:
                    res = True
            print("%s - header vector %s" % ("ok" if res else "not ok", name))
            bad_n += not res
        sys.exit(1 if bad_n else 0)
    if len(sys.argv) == 3 and sys.argv[1] == "--verify-dump":
        fresh = {v[0]: v for v in vecs}
        seen = set()
        bad_n = 0
        for line in open(sys.argv[2]):
            name, typ, hexdata = (line.split() + [""])[:3]
            f = fresh.get(name)
            res = False
            if f and f[3] and f[1] == typ:
                try:
                    res = same(parse(typ, bytes.fromhex(hexdata)), f[4])
                except Exception:
                    res = False
            seen.add(name)
            print("%s - meshd encoding of %s" % ("ok" if res else "not ok",
                                                  name))
            bad_n += not res
        missing = [v[0] for v in vecs if v[3] and v[0] not in seen]
        if missing:
            print("not ok - no meshd encoding for %s" % missing)
            bad_n += 1
        sys.exit(1 if bad_n else 0)
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
