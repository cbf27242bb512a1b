"""Readers that are slow but keep reading are not cut off by the stall timers, and readers that stop are.

While output is pending the server allows a connection --handshake-timeout (HTTP) or --close-timeout (after EOF or
a close) without progress. It used to see progress only when the socket woke it, after half a send buffer (up to
MiBs) had drained, and under io_uring not at all for a WebSocket reply sent with MSG_WAITALL or a relay member's
queue; it now asks the kernel how many bytes the peer acknowledged. Each reader here takes several timeouts' worth
of time at a steady pace."""
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402
from test_metrics import fetch, val, wait_for  # noqa: E402
from test_relay import payload as relay_payload  # noqa: E402

RATE = 1_500_000      # bytes/s a slow reader takes
SECONDS = 3.5          # the reader sets the pace, so sanitizer builds need no more time


def buffers_could_hold(n, rcvbuf=256 * 1024):
    """True when the server's send buffer (tcp_wmem's maximum) plus the client's receive buffer could take n bytes
    at once: then no output would stay pending in the server and these tests would test nothing."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    return wmem_max + 2 * rcvbuf >= n


def read_slowly(sock, want, rate=RATE, seconds=None):
    """Read up to want bytes at about rate bytes/s (for at most seconds, if given); returns what came. Raises on a
    reset; stops early on EOF."""
    got = bytearray()
    start = time.monotonic()
    sock.settimeout(wsr.IO_TIMEOUT)
    while len(got) < want:
        elapsed = time.monotonic() - start
        if seconds is not None and elapsed >= seconds:
            break
        allowed = int((elapsed + 0.05) * rate) - len(got)
        if allowed <= 0:
            time.sleep(0.02)
            continue
        chunk = sock.recv(min(allowed, want - len(got), 65536))
        if not chunk:
            break
        got += chunk
    return bytes(got)


class SlowDownload(unittest.TestCase):
    SIZE = 12 * 1024 * 1024

    @classmethod
    def setUpClass(cls):
        if buffers_could_hold(cls.SIZE):
            raise unittest.SkipTest("tcp_wmem's maximum is so large the file would leave at once")
        cls.tmp = tempfile.mkdtemp(prefix="wsr-slow-")
        cls.body = random.Random(3).randbytes(cls.SIZE)
        with open(os.path.join(cls.tmp, "big.bin"), "wb") as f:
            f.write(cls.body)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, srv):
        sock = wsr.connect(srv.port, rcvbuf=256 * 1024)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock

    def test_steady_reader_is_not_cut(self):
        """--handshake-timeout 1: a reader taking 1.5 MB/s for 3.5 s (about 5 MB, more than the socket buffers
        hold) gets every byte it reads and the connection stays open."""
        with wsr.Server("--threads", "1", "--handshake-timeout", "1", "--static", self.tmp) as srv:
            sock = self.get(srv)
            try:
                got = read_slowly(sock, self.SIZE + 1024, seconds=SECONDS)
                head, _, body = got.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
                self.assertGreater(len(body), 3 * 1024 * 1024, "read too little to span several timeouts")
                self.assertEqual(body, self.body[:len(body)])
                rest = read_slowly(sock, self.SIZE - len(body), rate=1 << 30)   # then fast: all of it, no cut
                self.assertEqual(body + rest, self.body)
            finally:
                sock.close()
            self.assertEqual(srv.stop(), 0)

    def test_stopped_reader_is_cut(self):
        """The same download left unread is closed once the buffers are full and a timeout passes."""
        with wsr.Server("--threads", "1", "--handshake-timeout", "1", "--static", self.tmp) as srv:
            sock = self.get(srv)
            try:
                time.sleep(3.0 * wsr.SLOW)
                sock.settimeout(wsr.IO_TIMEOUT)
                total, ended = 0, False
                try:
                    while True:
                        chunk = sock.recv(1 << 20)
                        if not chunk:
                            ended = True
                            break
                        total += len(chunk)
                except ConnectionResetError:
                    ended = True
                self.assertTrue(ended)
                self.assertLess(total, self.SIZE, "a reader that stopped got everything: no stall to detect")
            finally:
                sock.close()
            self.assertEqual(srv.stop(), 0)


class SlowDrainAfterFin(unittest.TestCase):
    def test_echo_reply_drains_after_fin(self):
        """--close-timeout 1: an 8 MB message to /echo, then FIN at once; the reply drains at 1.5 MB/s (under
        io_uring one MSG_WAITALL send that completes only at its end) and all of it arrives before the close."""
        n = 8 * 1024 * 1024
        if buffers_could_hold(n):
            self.skipTest("tcp_wmem's maximum is so large the reply would leave at once")
        msg = random.Random(4).randbytes(n)
        with wsr.Server("--threads", "1", "--close-timeout", "1") as srv:
            ws = wsr.RawWS(srv.port, "/echo", rcvbuf=256 * 1024)
            try:
                ws.send_frame(wsr.OP_BIN, msg)
                ws.sock.shutdown(socket.SHUT_WR)
                got = read_slowly(ws.sock, n + 10)
                self.assertEqual(len(got), n + 10, "the reply was cut after %d bytes" % len(got))
                self.assertEqual(got[:2], b"\x82\x7f")
                self.assertEqual(got[10:], msg)
                self.assertTrue(ws.at_eof(), "the server closes once the reply is out")
            finally:
                ws.close()
            self.assertEqual(srv.stop(), 0)

    def test_relay_queue_drains_after_fin(self):
        """--close-timeout 1: a relay member with ~10 MB queued sends FIN and reads at 1.5 MB/s; every message
        arrives whole before the close."""
        count, size = 160, 65536
        if buffers_could_hold(count * size):
            self.skipTest("tcp_wmem's maximum is so large the queue would leave at once")
        with wsr.Server("--threads", "1", "--close-timeout", "1", "--max-backlog", "64M") as srv:
            http = wsr.HttpConn(srv.port)
            sub = wsr.RawWS(srv.port, "/relay/slow-fin", seed=9)
            pub = wsr.RawWS(srv.port, "/relay/slow-fin", seed=10)
            try:
                for seq in range(count):
                    pub.send_frame(wsr.OP_BIN, relay_payload(seq, size))
                wait_for(lambda: val(fetch(http), "wsrelay_messages_in_total", endpoint="relay") >= count,
                         "the server to take every message before the FIN (the member leaves at it)")
                wait_for(lambda: val(fetch(http), "wsrelay_relay_queue_slots") >= 64, "the member's queue to fill")
                sub.sock.shutdown(socket.SHUT_WR)
                frame = size + 10  # 2-byte header + 64-bit length (65536 needs it)
                got = read_slowly(sub.sock, count * frame)
                self.assertEqual(len(got), count * frame, "the queue was cut after %d bytes" % len(got))
                for seq in range(count):
                    self.assertEqual(got[seq * frame + 10:(seq + 1) * frame], relay_payload(seq, size), seq)
                self.assertTrue(sub.at_eof(), "the server closes once the queue is out")
                pub.close_cleanly()
            finally:
                for c in (sub, pub, http):
                    c.close()
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
