#!/usr/bin/env python3
"""fault_echo.py [--flip N] [--dribble]: a raw TCP echo on 127.0.0.1 (port 0,
"listening on 127.0.0.1:PORT" on stdout) that misbehaves on purpose, for
checking what `wsload --raw` reports (scripts/bench-smoke.sh):

  --flip N    flip bit 2 of the byte at stream offset N of every connection
  --dribble   echo in pieces of 1..7 bytes, so frames and their headers
              arrive split at every kind of offset

One thread per connection; SIGTERM or SIGINT exits."""
import argparse
import signal
import socket
import sys
import threading
import time


def serve(conn, flip, dribble):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    off = 0
    piece = 0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf = bytearray(data)
            if flip is not None and off <= flip < off + len(buf):
                buf[flip - off] ^= 0x04
            off += len(buf)
            if not dribble:
                conn.sendall(buf)
                continue
            i = 0
            while i < len(buf):
                piece = piece % 7 + 1
                conn.sendall(buf[i:i + piece])
                i += piece
                time.sleep(0)  # let each piece leave as its own segment more often
    except OSError:
        pass
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flip", type=int)
    ap.add_argument("--dribble", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    print("listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
    try:
        while True:
            conn, _ = ls.accept()
            threading.Thread(target=serve, args=(conn, a.flip, a.dribble), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
