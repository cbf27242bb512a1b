"""Backpressure and I/O-backend edge cases (run once per backend: WSR_IO=epoll|uring): a reader that stops reading is
paused and later gets every echo in order; a FIN (with or without a close frame) that arrives while the server is
paused; more connections holding a partial frame than the io_uring provided-buffer ring has buffers; resets while a
send is in flight; SIGTERM with output stuck; an HTTP reply still in flight when the upgrade to a relay channel
arrives.

Synchronisation is on the server's own counters (GET /metrics), never on sleeps: a case waits (bounded) until the
server says it paused, read the bytes or joined the channel, then checks what the client receives."""
import contextlib
import os
import random
import select
import signal
import socket
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402

WAIT = 10.0 * wsr.SLOW   # bound on any wait for a server counter


# --------------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------------

def metrics(port):
    """Samples of GET /metrics as {"name{labels}": value}."""
    with wsr.HttpConn(port) as h:
        h.request("GET", "/metrics")
        r = h.read_response()
    if r.status != 200:
        raise AssertionError("/metrics answered %d" % r.status)
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric(port, key):
    return metrics(port).get(key, 0.0)


def wait_until(pred, what, timeout=WAIT):
    """Poll pred() (a cheap query of the server) until true; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.02)


@contextlib.contextmanager
def frozen(srv):
    """Stop the server process (SIGSTOP, every thread seen stopped) for the body, then SIGCONT: whatever the client
    sends meanwhile is waiting in the socket buffers at once when the server runs again, so it handles it in one
    batch (io_uring: more receive completions than the provided-buffer ring has buffers)."""
    pid = srv.proc.pid
    srv.signal(signal.SIGSTOP)
    try:
        def all_stopped():
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except FileNotFoundError:
                    continue
                if state not in ("T", "t"):
                    return False
            return True
        wait_until(all_stopped, "the server to stop on SIGSTOP")
        yield
    finally:
        srv.signal(signal.SIGCONT)


PAUSES = "wsrelay_backpressure_pauses_total"
RELAY_MEMBERS = 'wsrelay_relay_members{worker="0"}'


def payload(i, size):
    """Message i: its index, then bytes that differ per message, so a lost, doubled or reordered echo shows."""
    head = struct.pack("!I", i)
    body = bytes(((i * 7 + k) & 0xFF) for k in range(min(size - 4, 256)))
    body = (body * ((size - 4) // max(len(body), 1) + 1))[:size - 4]
    return head + body


def server_frame_len(n):
    return n + (2 if n <= 125 else 4 if n <= 0xFFFF else 10)


def parse_server_frames(buf):
    """(opcode, payload) for every whole unmasked frame in buf."""
    out, p = [], 0
    while p + 2 <= len(buf):
        b0, b1 = buf[p], buf[p + 1]
        if b1 & 0x80:
            raise AssertionError("server sent a masked frame")
        n, h = b1 & 0x7F, 2
        if n == 126:
            n, h = struct.unpack_from("!H", buf, p + 2)[0], 4
        elif n == 127:
            n, h = struct.unpack_from("!Q", buf, p + 2)[0], 10
        if p + h + n > len(buf):
            break
        if not b0 & 0x80:
            raise AssertionError("fragmented echo frame at offset %d" % p)
        out.append((b0 & 0xF, bytes(buf[p + h:p + h + n])))
        p += h + n
    return out, p


class TunedWS(wsr.RawWS):
    """RawWS whose socket gets SO_RCVBUF (set before connect, so the window is small from the start)."""

    def __init__(self, port, path="/echo", seed=1, rcvbuf=None, handshake=True):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(wsr.IO_TIMEOUT)
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wsr.Conn.__init__(self, port, sock=s)
        self.rng = random.Random(seed)
        self.key = __import__("base64").b64encode(bytes(self.rng.getrandbits(8) for _ in range(16))).decode()
        self.path = path
        self.host = "127.0.0.1"
        self.extra = {}
        self.response = None
        if handshake:
            self.handshake()


def send_until_paused(test, ws, data, port, pauses_before):
    """Write data without reading until the server reports a new pause (its output for ws passed --max-backlog) and
    the socket refuses more. Returns how many bytes went out."""
    s = ws.sock
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + WAIT
    paused = False
    try:
        while sent < len(data):
            _, w, _ = select.select([], [s], [], 0.05)
            if w:
                try:
                    sent += s.send(data[sent:sent + (64 << 10)])
                    continue
                except BlockingIOError:
                    pass
            # The socket is full (or slow): has the server paused this reader yet?
            if metric(port, PAUSES) > pauses_before:
                paused = True
                break
            test.assertLess(time.monotonic(), deadline, "server never paused the reader (sent %d bytes)" % sent)
        if not paused:
            wait_until(lambda: metric(port, PAUSES) > pauses_before, "the server to pause the reader")
    finally:
        s.settimeout(wsr.IO_TIMEOUT)
    return sent


def pump(test, ws, data, sent, want_bytes, shut_wr_after=False):
    """Full duplex: write data[sent:] while reading into ws.buf until want_bytes have arrived. With shut_wr_after,
    SHUT_WR once everything is written. Bounded by WAIT."""
    s = ws.sock
    s.setblocking(False)
    deadline = time.monotonic() + 3 * WAIT
    shut = False
    try:
        while len(ws.buf) < want_bytes or sent < len(data):
            if sent == len(data) and shut_wr_after and not shut:
                s.shutdown(socket.SHUT_WR)
                shut = True
            r, w, _ = select.select([s], [s] if sent < len(data) else [], [], 0.5)
            if r:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise AssertionError("EOF after %d of %d echo bytes" % (len(ws.buf), want_bytes))
                ws.buf += chunk
            if w:
                try:
                    sent += s.send(data[sent:sent + (256 << 10)])
                except BlockingIOError:
                    pass
            test.assertLess(time.monotonic(), deadline,
                            "no completion: sent %d/%d, got %d/%d" % (sent, len(data), len(ws.buf), want_bytes))
        if shut_wr_after and not shut:
            s.shutdown(socket.SHUT_WR)
    finally:
        s.settimeout(wsr.IO_TIMEOUT)
    return sent


# --------------------------------------------------------------------------------------------------------------------
# (a) backpressure round trip, (b) FIN while paused
# --------------------------------------------------------------------------------------------------------------------

class Backpressure(wsr.ServerTestCase):
    # One worker, a small backlog: a reader that stops reading is paused after little output.
    FLAGS = ("--threads", "1", "--max-backlog", "64K", "--close-timeout", "10")
    # 8 MiB of echo: well past what the socket buffers hold with a 16 KiB receive window (epoll pauses after 2-4 MiB
    # here, io_uring earlier), so the reader is paused part way and the rest is written while it catches up.
    N, SIZE = 2048, 4096

    def build(self, ws, n=None, size=None):
        n, size = n or self.N, size or self.SIZE
        msgs = [payload(i, size) for i in range(n)]
        return msgs, b"".join(ws.frame_bytes(wsr.OP_BIN, m) for m in msgs)

    def check_echoes(self, msgs, buf):
        frames, used = parse_server_frames(buf)
        self.assertEqual(len(frames), len(msgs), "echo count")
        for i, (m, (op, got)) in enumerate(zip(msgs, frames)):
            if op != wsr.OP_BIN or got != m:
                self.fail("echo %d wrong: opcode %d, %d bytes starting %r (want index %d, %d bytes)"
                          % (i, op, len(got), got[:8], i, len(m)))
        return used

    def test_paused_reader_gets_every_echo_in_order(self):
        ws = TunedWS(self.port, rcvbuf=16384, seed=11)
        try:
            msgs, data = self.build(ws)
            want = sum(server_frame_len(len(m)) for m in msgs)
            before = metric(self.port, PAUSES)
            sent = send_until_paused(self, ws, data, self.port, before)
            pump(self, ws, data, sent, want)
            used = self.check_echoes(msgs, ws.buf)
            self.assertEqual(used, len(ws.buf), "bytes after the last echo")
            ws.buf.clear()
            # Resumed for good: a later message still echoes at once.
            self.assertEqual(ws.echo(b"after"), (wsr.OP_BIN, b"after"))
            ws.close_cleanly()
        finally:
            ws.close()

    def test_two_pause_cycles(self):
        # Pause, catch up, pause again on the same connection: the receive is cancelled and re-armed twice.
        ws = TunedWS(self.port, rcvbuf=16384, seed=12)
        try:
            for rnd in range(2):
                msgs, data = self.build(ws, n=1024)
                want = sum(server_frame_len(len(m)) for m in msgs)
                before = metric(self.port, PAUSES)
                sent = send_until_paused(self, ws, data, self.port, before)
                pump(self, ws, data, sent, want)
                used = self.check_echoes(msgs, ws.buf)
                del ws.buf[:used]
                self.assertEqual(len(ws.buf), 0, "round %d: bytes after the last echo" % rnd)
            ws.close_cleanly()
        finally:
            ws.close()

    def test_fin_while_paused_gets_all_echoes_then_close(self):
        # The client writes everything, then shuts down its write side while the server is paused with output
        # pending: every echo still arrives, in order, and then the server closes the connection.
        ws = TunedWS(self.port, rcvbuf=16384, seed=13)
        try:
            # 4 MiB: enough to pause the reader on either backend, and (measured) little enough that all of it is
            # in the socket buffers by then, so the FIN goes out while the server is paused; if not, it follows the
            # last byte written, which is still the case of a FIN behind data the server has not read yet.
            msgs, data = self.build(ws, n=1024)
            want = sum(server_frame_len(len(m)) for m in msgs)
            before = metric(self.port, PAUSES)
            sent = send_until_paused(self, ws, data, self.port, before)
            if sent == len(data):
                ws.sock.shutdown(socket.SHUT_WR)   # the FIN goes out while the server is paused
            pump(self, ws, data, sent, want, shut_wr_after=True)
            used = self.check_echoes(msgs, ws.buf)
            del ws.buf[:used]
            self.assertTrue(ws.at_eof(WAIT), "server did not close after the peer's FIN and the last echo")
            self.assertEqual(bytes(ws.buf), b"", "bytes after the last echo")
        finally:
            ws.close()

    def test_close_frame_and_fin_while_paused(self):
        # Same, with a close frame after the data: the echoes, then the close reply (1000), then EOF.
        ws = TunedWS(self.port, rcvbuf=16384, seed=14)
        try:
            msgs, data = self.build(ws, n=1024)
            data += ws.frame_bytes(wsr.OP_CLOSE, struct.pack("!H", 1000))
            want = sum(server_frame_len(len(m)) for m in msgs) + server_frame_len(2)
            before = metric(self.port, PAUSES)
            sent = send_until_paused(self, ws, data, self.port, before)
            if sent == len(data):
                ws.sock.shutdown(socket.SHUT_WR)
            pump(self, ws, data, sent, want, shut_wr_after=True)
            frames, used = parse_server_frames(ws.buf)
            self.assertEqual(len(frames), len(msgs) + 1, "frames received")
            self.check_echoes(msgs, ws.buf[:used - server_frame_len(2)])
            op, body = frames[-1]
            self.assertEqual((op, body[:2]), (wsr.OP_CLOSE, struct.pack("!H", 1000)))
            del ws.buf[:used]
            self.assertTrue(ws.at_eof(WAIT), "server did not close TCP after the close handshake")
            self.assertEqual(bytes(ws.buf), b"", "bytes after the close frame")
        finally:
            ws.close()


class BackpressureZeroCopy(Backpressure):
    # The same cases with replies of 16 KiB and more sent with SEND_ZC under io_uring (a no-op flag under epoll):
    # a send buffer is released only after its notification.
    FLAGS = Backpressure.FLAGS + ("--zc-threshold", "16K")


# --------------------------------------------------------------------------------------------------------------------
# (c) more partial frames held at once than the provided-buffer ring has buffers
# --------------------------------------------------------------------------------------------------------------------

class ManyPartialFrames(wsr.ServerTestCase):
    # One worker: one ring of 256 provided buffers, and 300 connections each holding one as a partial frame.
    FLAGS = ("--threads", "1")
    CONNS = 300

    def test_more_partial_frames_than_ring_buffers(self):
        conns = []
        try:
            for i in range(self.CONNS):
                conns.append(self.raw("/echo", seed=1000 + i))
            for rnd in range(2):
                frames, cuts = [], []
                for i, ws in enumerate(conns):
                    size = 200 + (i * 37 + rnd * 101) % 3000
                    f = ws.frame_bytes(wsr.OP_BIN, payload(i + rnd * 1000, size))
                    frames.append(f)
                    cuts.append(1 + (i * 131 + rnd) % (len(f) - 1))   # never the whole frame
                key = 'wsrelay_bytes_in_total{endpoint="echo"}'
                base = metric(self.port, key)
                with frozen(self.server):
                    for ws, f, cut in zip(conns, frames, cuts):
                        ws.send(f[:cut])
                # Every partial frame has been read by the server (each now holds a buffer), before any completes.
                total = sum(cuts)
                wait_until(lambda: metric(self.port, key) >= base + total,
                           "the server to read %d bytes of partial frames" % total)
                with frozen(self.server):
                    for ws, f, cut in zip(conns, frames, cuts):
                        ws.send(f[cut:])
                for i, ws in enumerate(conns):
                    size = 200 + (i * 37 + rnd * 101) % 3000
                    self.assertEqual(ws.recv_message(), (wsr.OP_BIN, payload(i + rnd * 1000, size)),
                                     "round %d conn %d" % (rnd, i))
            for ws in conns:
                ws.close_cleanly()
        finally:
            for ws in conns:
                ws.close()

    def test_burst_of_whole_frames_on_many_connections(self):
        # Every connection's frame lands at about the same time: more receive completions in one batch than the
        # ring has buffers (io_uring: -ENOBUFS ends some multishot receives, which must be re-armed).
        conns = []
        try:
            for i in range(self.CONNS):
                conns.append(self.raw("/websocket", seed=2000 + i))
            blobs = [ws.frame_bytes(wsr.OP_TEXT, b"burst-%d" % i) * 3 for i, ws in enumerate(conns)]
            with frozen(self.server):
                for ws, b in zip(conns, blobs):
                    ws.send(b)
            for i, ws in enumerate(conns):
                for _ in range(3):
                    self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, b"echo:burst-%d" % i))
            for ws in conns:
                ws.close_cleanly()
        finally:
            for ws in conns:
                ws.close()


# --------------------------------------------------------------------------------------------------------------------
# (d) resets with output pending, and exit with output stuck
# --------------------------------------------------------------------------------------------------------------------

class ResetsWithOutputPending(wsr.ServerTestCase):
    FLAGS = ("--threads", "1", "--max-backlog", "64K")

    def check_others_served(self, good, i):
        self.assertEqual(good.echo(b"still here %d" % i), (wsr.OP_BIN, b"still here %d" % i))

    def reset_paused(self, seed, size=4096, n=1024):
        ws = TunedWS(self.port, rcvbuf=16384, seed=seed)
        data = b"".join(ws.frame_bytes(wsr.OP_BIN, payload(i, size)) for i in range(n))
        before = metric(self.port, PAUSES)
        send_until_paused(self, ws, data, self.port, before)
        wsr.reset_close(ws.sock)   # RST: the server's send in flight and its paused receive both fail

    def test_reset_while_paused_with_send_in_flight(self):
        with self.raw("/echo", seed=30) as good:
            for i in range(4):
                self.reset_paused(40 + i)
                self.check_others_served(good, i)
            good.close_cleanly()

    def test_reset_with_large_single_reply_in_flight(self):
        # One 1 MiB message: its echo is one large send, still in flight when the peer resets.
        with self.raw("/echo", seed=31) as good:
            for i in range(3):
                self.reset_paused(50 + i, size=1 << 20, n=8)  # 8 MiB: more than the 4 MiB tcp_wmem ceiling
                self.check_others_served(good, i)
            good.close_cleanly()

    def test_reset_right_after_request(self):
        # The reset races the reply: sent before or after the server's send completes, nothing else is disturbed.
        with self.raw("/echo", seed=32) as good:
            for i in range(20):
                ws = self.raw("/echo", seed=60 + i)
                ws.send(ws.frame_bytes(wsr.OP_BIN, payload(i, 64 << 10)))
                wsr.reset_close(ws.sock)
            self.check_others_served(good, 0)
            good.close_cleanly()


class ResetsWithOutputPendingZeroCopy(ResetsWithOutputPending):
    FLAGS = ResetsWithOutputPending.FLAGS + ("--zc-threshold", "4K")


class ExitWithOutputStuck(unittest.TestCase):
    """SIGTERM while a connection's output is stuck (the peer reads nothing) and others were reset mid-send: the
    server sends its close, gives up after --close-timeout, cancels what is in flight and exits 0."""

    def test_sigterm_with_paused_reader_and_resets(self):
        self.run_case(())

    def test_sigterm_with_zero_copy_sends_stuck(self):
        # SEND_ZC buffers are held until the kernel's notification; the server must still exit 0 without leaks.
        self.run_case(("--zc-threshold", "64K"))

    def run_case(self, extra):
        srv = wsr.Server("--threads", "1", "--max-backlog", "64K", "--close-timeout", "1", *extra).start()
        stuck = []
        try:
            for k in range(3):
                ws = TunedWS(srv.port, rcvbuf=16384, seed=70 + k)
                data = b"".join(ws.frame_bytes(wsr.OP_BIN, payload(i, 8192)) for i in range(512))
                send_until_paused(self, ws, data, srv.port, metric(srv.port, PAUSES))
                stuck.append(ws)
            wsr.reset_close(stuck.pop().sock)        # one reset with a send in flight
            quiet = wsr.RawWS(srv.port, "/echo", seed=80)  # and one idle, well-behaved client
            stuck.append(quiet)
            srv.signal(signal.SIGTERM)
            rc = srv.wait(20.0 * wsr.SLOW)
            self.assertIsNotNone(rc, "server did not exit after SIGTERM with output stuck")
            self.assertEqual(rc, 0, "exit status after SIGTERM; stderr:\n%s" % srv.stderr())
            # The idle client got the shutdown close (1001) before the server went away.
            quiet.sock.settimeout(wsr.IO_TIMEOUT)
            f = quiet.recv_frame()
            self.assertEqual((f.opcode, f.close_code()), (wsr.OP_CLOSE, 1001))
        finally:
            for ws in stuck:
                ws.close()
            srv.kill()
            srv.close_files()


# --------------------------------------------------------------------------------------------------------------------
# (e) an HTTP reply still in flight when the upgrade to a relay channel arrives
# --------------------------------------------------------------------------------------------------------------------

class PipelinedUpgradeToRelay(wsr.ServerTestCase):
    # A large backlog allowance: the pipelined replies must not pause the connection, so the upgrade behind them is
    # parsed while they are still being sent.
    FLAGS = ("--threads", "1", "--max-backlog", "64M")
    GETS = 200   # about 6 MB of replies: far more than the socket buffers hold while the client does not read

    def members(self):
        m = metrics(self.port)
        return sum(v for k, v in m.items() if k.startswith("wsrelay_relay_members{"))

    def test_http_replies_then_101_then_relay_in_order(self):
        chan = "/relay/pipe-%d" % os.getpid()
        pub = self.raw(chan, seed=90)
        c = TunedWS(self.port, chan, seed=91, rcvbuf=4096, handshake=False)
        try:
            wait_until(lambda: self.members() == 1, "the publisher to join")
            reqs_key = "wsrelay_http_requests_total"
            base = metric(self.port, reqs_key)
            c.send(b"".join(wsr.build_request("GET", "/app.js") for _ in range(self.GETS)))
            wait_until(lambda: metric(self.port, reqs_key) >= base + self.GETS, "the pipelined GETs to be parsed")
            # A separate packet, while the replies are still going out.
            c.send(c.handshake_bytes())
            wait_until(lambda: self.members() == 2, "the pipelined upgrade to join the channel")
            msgs = [b"relay-%03d" % i for i in range(50)]
            for m in msgs:
                pub.send_frame(wsr.OP_TEXT, m)
            # Now read: every reply in order, then the 101, then the relay messages in order.
            with open(os.path.join(wsr.REPO, "static", "app.js"), "rb") as f:
                body = f.read()
            for i in range(self.GETS):
                r = wsr.parse_head(c.read_until(b"\r\n\r\n", limit=1 << 16), c)
                self.assertEqual(r.status, 200, "reply %d" % i)
                self.assertEqual(r.body, body, "reply %d body" % i)
            r = wsr.parse_head(c.read_until(b"\r\n\r\n", limit=1 << 16))
            self.assertEqual(r.status, 101, "after the replies: %r" % r)
            self.assertEqual(r.header("sec-websocket-accept"), wsr.accept_for(c.key))
            for m in msgs:
                self.assertEqual(c.recv_message(), (wsr.OP_TEXT, m))
            # And the other way round.
            c.send_frame(wsr.OP_TEXT, b"from-pipelined")
            self.assertEqual(pub.recv_message(), (wsr.OP_TEXT, b"from-pipelined"))
            c.close_cleanly()
            pub.close_cleanly()
        finally:
            c.close()
            pub.close()


class PipelinedUpgradeToRelayTwoWorkers(PipelinedUpgradeToRelay):
    # The publisher may be on the other worker: its messages arrive through the inbox while the reply is in flight.
    FLAGS = ("--threads", "2", "--max-backlog", "64M")


if __name__ == "__main__":
    wsr.main()
