"""Misbehaving and numerous peers: stalled half-requests, resets mid-frame, more connections than allowed, 200
concurrent connections on 2 threads, idle pings and idle timeouts."""
import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402


def still_open(conn):
    """True if the server has neither closed nor answered conn yet (non-blocking peek)."""
    conn.sock.setblocking(False)
    try:
        conn.sock.recv(1, socket.MSG_PEEK)
        return False  # EOF or an answer (e.g. 408) already arrived
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        conn.sock.settimeout(wsr.IO_TIMEOUT)


class Stalled(wsr.ServerTestCase):
    # One worker: a stalled client and a good one share the same event loop.
    FLAGS = ("--threads", "1", "--handshake-timeout", "1")

    def test_stalled_half_request(self):
        stalled = []
        for part in (b"GET / HTT", b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\n", b"G", b""):
            c = wsr.HttpConn(self.port)
            if part:
                c.send(part)
            stalled.append(c)
        try:
            # Others are served right away, while the stalled ones are still waiting for their timeout.
            with self.http() as h:
                h.request("GET", "/healthz")
                self.assertEqual(h.read_response().status, 200)
            with self.raw("/echo") as ws:
                self.assertEqual(ws.echo(b"not delayed"), (wsr.OP_BIN, b"not delayed"))
                ws.close_cleanly()
            self.assertTrue(all(still_open(c) for c in stalled),
                            "a stalled client was dropped before the good client was served: the good client waited")
            # Then each stalled one is closed (a 408 response first is fine).
            for c in stalled:
                self.assertTrue(c.at_eof(10 * wsr.SLOW), "stalled connection not closed after --handshake-timeout")
                if c.buf:
                    self.assertTrue(bytes(c.buf).startswith(b"HTTP/1.1 408"), bytes(c.buf[:200]))
        finally:
            for c in stalled:
                c.close()


class Resets(wsr.ServerTestCase):
    FLAGS = ("--threads", "1")

    def check_others_served(self):
        with self.raw("/websocket", seed=5) as ws:
            self.assertEqual(ws.echo(b"ok", wsr.OP_TEXT), (wsr.OP_TEXT, b"echo:ok"))
            ws.close_cleanly()

    def test_reset_mid_frame(self):
        for i in range(10):
            ws = self.raw("/echo", seed=i)
            frame = ws.frame_bytes(wsr.OP_BIN, bytes(1000))
            ws.send(frame[:[1, 2, 6, 10, 500][i % 5]])
            wsr.reset_close(ws.sock)
        self.check_others_served()

    def test_reset_mid_fragmented_message(self):
        ws = self.raw("/echo")
        ws.send(ws.frame_bytes(wsr.OP_TEXT, b"first half", fin=False))
        wsr.reset_close(ws.sock)
        self.check_others_served()

    def test_reset_mid_handshake_and_mid_http(self):
        for data in (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgr", b"GET /index.html HT", b""):
            c = wsr.connect(self.port)
            if data:
                c.sendall(data)
            wsr.reset_close(c)
        self.check_others_served()

    def test_reset_while_server_sends(self):
        # The server is writing a large reply when the peer resets: a failed write must not kill it (SIGPIPE).
        import select
        for i in range(3):
            ws = self.raw("/echo", seed=20 + i)
            data = ws.frame_bytes(wsr.OP_BIN, bytes(4 << 20))
            s = ws.sock
            s.setblocking(False)
            sent = got = 0
            while sent < len(data) or got < (256 << 10):
                r, w, _ = select.select([s], [s] if sent < len(data) else [], [], wsr.IO_TIMEOUT)
                self.assertTrue(r or w, "no progress sending the big frame")
                if w:
                    sent += s.send(data[sent:sent + (256 << 10)])
                if r:
                    chunk = s.recv(1 << 20)
                    self.assertTrue(chunk, "server closed during the echo")
                    got += len(chunk)
            wsr.reset_close(s)   # most of the 4 MiB reply is still to be written
        self.check_others_served()

    def test_half_close_after_request(self):
        # A client that shuts down its write side right after a complete request still gets the answer.
        with self.http() as c:
            c.request("GET", "/healthz")
            c.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(c.read_response().status, 200)
        self.check_others_served()


class MaxConnections(wsr.ServerTestCase):
    FLAGS = ("--threads", "2", "--max-connections", "20")

    def test_over_limit(self):
        first = [self.raw("/echo", seed=i) for i in range(20)]
        try:
            for i, ws in enumerate(first):
                self.assertEqual(ws.echo(b"c%d" % i), (wsr.OP_BIN, b"c%d" % i))
            for j in range(5):
                extra = wsr.RawWS(self.port, "/echo", handshake=False, seed=100 + j)
                try:
                    try:
                        extra.send(extra.handshake_bytes())
                        r = wsr.parse_head(extra.read_until(b"\r\n\r\n"))
                        self.assertEqual(r.status, 503, "connection %d over the limit got %r" % (21 + j, r))
                    except (wsr.Closed, BrokenPipeError, ConnectionResetError):
                        pass  # closed without an answer: also acceptable
                finally:
                    extra.close()
            # The first 20 are unaffected.
            for i, ws in enumerate(first):
                self.assertEqual(ws.echo(b"again%d" % i), (wsr.OP_BIN, b"again%d" % i))
            # Freeing slots lets new clients in (the count may lag the close by an event-loop turn: retry briefly).
            for ws in first[:5]:
                ws.close_cleanly()
            for attempt in range(50):
                try:
                    with self.raw("/echo", seed=200 + attempt) as ws:
                        self.assertEqual(ws.echo(b"in"), (wsr.OP_BIN, b"in"))
                        ws.close_cleanly()
                    break
                except (AssertionError, wsr.Closed, ConnectionResetError, BrokenPipeError):
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        finally:
            for ws in first:
                ws.close()


class ManyConnections(wsr.ServerTestCase):
    FLAGS = ("--threads", "2")

    def test_200_connections(self):
        conns = []
        try:
            for i in range(200):
                conns.append(self.raw("/echo" if i % 2 else "/websocket", seed=i))
            for i, ws in enumerate(conns):
                ws.send_frame(wsr.OP_TEXT, b"n%d" % i)
            for i, ws in enumerate(conns):
                want = b"n%d" % i if i % 2 else b"echo:n%d" % i
                self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, want))
            for ws in conns:
                ws.close_cleanly()
        finally:
            for ws in conns:
                ws.close()


class IdlePing(wsr.ServerTestCase):
    FLAGS = ("--threads", "1", "--ping-interval", "1", "--idle-timeout", "3")

    def test_quiet_client_is_pinged(self):
        with self.raw("/echo") as ws:
            ws.sock.settimeout(6 * wsr.SLOW)
            f = ws.recv_frame()
            self.assertEqual(f.opcode, wsr.OP_PING, f)
            self.assertTrue(f.fin)
            self.assertLessEqual(len(f.payload), 125)
            ws.sock.settimeout(wsr.IO_TIMEOUT)
            ws.send_frame(wsr.OP_PONG, f.payload)
            self.assertEqual(ws.echo(b"after ping"), (wsr.OP_BIN, b"after ping"))
            ws.close_cleanly()

    def test_answering_client_stays_connected(self):
        # python3-websockets answers pings itself; pongs are frames, so the 3 s idle timeout never fires.
        import asyncio
        import websockets

        async def go():
            async with websockets.connect(self.server.url("/echo"), ping_interval=None,
                                          open_timeout=10 * wsr.SLOW, close_timeout=2 * wsr.SLOW) as ws:
                await asyncio.sleep(4.5)
                await ws.send("still connected")
                return await ws.recv()
        self.assertEqual(wsr.ws_run(go), "still connected")


class IdleTimeout(wsr.ServerTestCase):
    FLAGS = ("--threads", "1", "--ping-interval", "0", "--idle-timeout", "2", "--close-timeout", "1")

    def test_silent_client_closed(self):
        with self.raw("/echo") as ws:
            ws.sock.settimeout(8 * wsr.SLOW)
            f = ws.expect_close(1001, eof_timeout=8 * wsr.SLOW)
            self.assertEqual(f.close_code(), 1001)


if __name__ == "__main__":
    wsr.main()
