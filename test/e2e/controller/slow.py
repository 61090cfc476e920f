#!/usr/bin/env python3
"""A slow Destination client over raw HTTP/2 (python3-h2), for controller.sh:
it opens Get(PATH) with a 100-byte stream window and reads nothing more
until told, so the controller's send queue for the stream fills and its
updates must wait (grpc_call_send -EAGAIN); then it opens the windows,
reads every update, applies them and compares the endpoint set it ends up
with to the expected one.

  slow.py STUBDIR ADDR PATH EXPECTED.json
      EXPECTED.json: {"ip:port": weight, ...}
  stdout: "held" once the stream is open and stalled; then it waits for a
  line on stdin; then one JSON line {"messages": N, "match": bool,
  "endpoints": N, "diff": [...]}.
"""
import json
import socket
import struct
import sys
import time
import ipaddress

sys.path.insert(0, sys.argv[1])
import destination_pb2 as pb  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402

host, port = sys.argv[2].rsplit(":", 1)
path, expected = sys.argv[3], json.load(open(sys.argv[4]))

sock = socket.create_connection((host, int(port)), timeout=10)
conn = h2.connection.H2Connection(h2.config.H2Configuration(
    client_side=True, header_encoding="utf-8"))
conn.local_settings = h2.settings.Settings(client=True, initial_values={
    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100})
conn.initiate_connection()
sid = conn.get_next_available_stream_id()
conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                        (":path", "/meshd.destination.v1.Destination/Get"),
                        (":authority", sys.argv[2]),
                        ("content-type", "application/grpc"),
                        ("te", "trailers")])
req = pb.GetDestination(path=path).SerializeToString()
conn.send_data(sid, struct.pack(">BI", 0, len(req)) + req, end_stream=True)
sock.sendall(conn.data_to_send())

body = bytearray()
status = None


def pump(until):
    global status
    sock.settimeout(0.2)
    while time.time() < until:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            return False
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                body.extend(ev.data)
            elif isinstance(ev, h2.events.TrailersReceived):
                status = dict(ev.headers).get("grpc-status")
            elif isinstance(ev, h2.events.StreamEnded):
                return False
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    return True


pump(time.time() + 0.5)       # settings exchanged, 100 bytes of the first add
print("held", flush=True)
sys.stdin.readline()          # the registry changes meanwhile
conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 30})
conn.increment_flow_control_window(1 << 30)
sock.sendall(conn.data_to_send())
last = len(body)
quiet = time.time() + 1.5
while time.time() < quiet:
    if not pump(time.time() + 0.2):
        break
    if len(body) != last:
        last = len(body)
        quiet = time.time() + 1.5
    # keep the windows open as the bytes are read
    n = len(body)
    if n:
        conn.acknowledge_received_data(0, sid) if False else None

state, msgs, off = {}, 0, 0
while off + 5 <= len(body):
    flag, n = struct.unpack(">BI", body[off:off + 5])
    if off + 5 + n > len(body):
        break
    u = pb.Update.FromString(bytes(body[off + 5:off + 5 + n]))
    off += 5 + n
    msgs += 1
    k = u.WhichOneof("update")
    if k == "add":
        for a in u.add.addrs:
            state["%s:%d" % (ipaddress.ip_address(a.addr.ip), a.addr.port)] = a.weight
    elif k == "remove":
        for a in u.remove.addrs:
            state.pop("%s:%d" % (ipaddress.ip_address(a.ip), a.port), None)
    elif k == "no_endpoints":
        state = {}
diff = sorted(set(state.items()) ^ set(expected.items()))[:5]
print(json.dumps({"messages": msgs, "match": state == expected,
                  "endpoints": len(state), "status": status,
                  "leftover": len(body) - off, "diff": diff}), flush=True)
