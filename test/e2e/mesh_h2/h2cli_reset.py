#!/usr/bin/python3
"""h2cli_reset.py: streams that go away while their name is being resolved,
for test/e2e/mesh_h2.sh.

  h2cli_reset.py HOST PORT AUTHORITY_RESET AUTHORITY_CLOSE AUTHORITY_OK

1. On one connection: a POST to AUTHORITY_RESET (a fresh name) with some
   body, reset at once (RST_STREAM CANCEL) while the proxy resolves it;
   then a GET to AUTHORITY_OK on the same connection must answer 200.
2. On a second connection: a POST to AUTHORITY_CLOSE (another fresh name),
   then the connection is closed at once.
Prints "ok STATUS" when step 1's GET got its 200, else "fail WHY".
"""
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events


def conn(host, port):
    s = socket.create_connection((host, port), timeout=10)
    c = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def req(c, sid, method, auth, path, end):
    c.send_headers(sid, [(":method", method), (":scheme", "http"),
                         (":authority", auth), (":path", path)],
                   end_stream=end)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    a_reset, a_close, a_ok = sys.argv[3], sys.argv[4], sys.argv[5]

    s, c = conn(host, port)
    req(c, 1, "POST", a_reset, "/echo", False)
    c.send_data(1, b"x" * 1000)
    s.sendall(c.data_to_send())
    c.reset_stream(1, 8)
    s.sendall(c.data_to_send())
    time.sleep(0.3)   # the resolution answers meanwhile
    req(c, 3, "GET", a_ok, "/hello", True)
    s.sendall(c.data_to_send())

    s2, c2 = conn(host, port)
    req(c2, 1, "POST", a_close, "/echo", False)
    c2.send_data(1, b"y" * 1000)
    s2.sendall(c2.data_to_send())
    s2.close()

    status = None
    deadline = time.monotonic() + 5
    while status is None and time.monotonic() < deadline:
        data = s.recv(65536)
        if not data:
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and \
                    ev.stream_id == 3:
                status = dict(ev.headers).get(b":status", b"").decode()
            elif isinstance(ev, h2.events.DataReceived):
                c.acknowledge_received_data(ev.flow_controlled_length,
                                            ev.stream_id)
        out = c.data_to_send()
        if out:
            s.sendall(out)
    s.close()
    print("ok %s" % status if status == "200" else "fail %s" % status)


if __name__ == "__main__":
    main()
