#!/usr/bin/python3
"""h2srv.py: a small h2c server for test/e2e/mesh_h2.sh (python3-h2).

  h2srv.py --listen 127.0.0.9:PORT --mode MODE --log FILE

Modes:
  fail    reads each request's body, answers 503 "failed by NAME"
  echo    answers 200 with the request's body
  refuse  answers every other stream (1st, 3rd, ...) with
          RST_STREAM(REFUSED_STREAM) as soon as its head arrives, echoes
          the others
  goaway  on every odd-numbered connection, answers the first request
          head with GOAWAY(last_stream_id=0) and closes; echoes on the
          other connections
Every request appends one line "MODE CONN STREAM METHOD PATH BODYLEN
ANSWER" to FILE (flushed at once), so the test can count what reached
the server. Runs until killed.
"""
import argparse
import socket
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

lock = threading.Lock()
nconn = 0
nstream = 0


def log(path, line):
    with lock:
        with open(path, "a") as f:
            f.write(line + "\n")


def serve(sock, args, cn):
    global nstream
    conf = h2.config.H2Configuration(client_side=False,
                                     header_encoding="utf-8")
    c = h2.connection.H2Connection(config=conf)
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    reqs = {}   # stream id -> [method, path, body bytearray]
    closing = False
    try:
        while not closing:
            data = sock.recv(65536)
            if not data:
                break
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    h = dict(ev.headers)
                    sid = ev.stream_id
                    reqs[sid] = [h.get(":method"), h.get(":path"),
                                 bytearray()]
                    if args.mode == "goaway" and cn % 2 == 1:
                        log(args.log, "goaway %d %d %s %s 0 goaway"
                            % (cn, sid, h.get(":method"), h.get(":path")))
                        c.close_connection(last_stream_id=0)
                        closing = True
                        break
                    if args.mode == "refuse":
                        with lock:
                            nstream += 1
                            refuse = nstream % 2 == 1
                        if refuse:
                            log(args.log, "refuse %d %d %s %s 0 refused"
                                % (cn, sid, h.get(":method"),
                                   h.get(":path")))
                            c.reset_stream(
                                sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                            del reqs[sid]
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length,
                                                ev.stream_id)
                    if ev.stream_id in reqs:
                        reqs[ev.stream_id][2] += ev.data
                elif isinstance(ev, h2.events.StreamEnded):
                    r = reqs.pop(ev.stream_id, None)
                    if r is None:
                        continue
                    answer(c, ev.stream_id, r, args, cn)
                elif isinstance(ev, h2.events.StreamReset):
                    reqs.pop(ev.stream_id, None)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    closing = True
            out = c.data_to_send()
            if out:
                sock.sendall(out)
            pending_send(c, sock)
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()


# bodies that did not fit the peer's window: stream id -> remaining bytes
sendq = {}


def pending_send(c, sock):
    for sid in list(sendq.get(id(c), {}).keys()):
        q = sendq[id(c)]
        rest = q[sid]
        try:
            while rest:
                n = min(len(rest), c.local_flow_control_window(sid),
                        c.max_outbound_frame_size)
                if n <= 0:
                    break
                c.send_data(sid, rest[:n])
                rest = rest[n:]
            if not rest:
                c.end_stream(sid)
                del q[sid]
            else:
                q[sid] = rest
        except h2.exceptions.StreamClosedError:
            del q[sid]
    out = c.data_to_send()
    if out:
        sock.sendall(out)


def answer(c, sid, r, args, cn):
    method, path, body = r
    if args.mode == "fail":
        status, data = 503, ("failed by %s\n" % args.name).encode()
    else:
        status, data = 200, bytes(body)
    log(args.log, "%s %d %d %s %s %d %d"
        % (args.mode, cn, sid, method, path, len(body), status))
    c.send_headers(sid, [(":status", str(status)),
                         ("content-length", str(len(data))),
                         ("served-by", args.name)])
    sendq.setdefault(id(c), {})[sid] = data


def main():
    global nconn
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--mode", required=True,
                    choices=["fail", "echo", "refuse", "goaway"])
    ap.add_argument("--log", required=True)
    ap.add_argument("--name", default="h2srv")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(64)
    while True:
        s, _ = ls.accept()
        with lock:
            nconn += 1
            cn = nconn
        threading.Thread(target=serve, args=(s, args, cn),
                         daemon=True).start()


if __name__ == "__main__":
    main()
