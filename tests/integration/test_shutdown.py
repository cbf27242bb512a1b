"""SIGTERM/SIGINT: stop accepting, close every WebSocket with 1001, wait for the replies up to --close-timeout, and
exit 0."""
import os
import signal
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402


class Shutdown(unittest.TestCase):
    def run_shutdown(self, sig, silent=0, close_timeout=60):
        """Open WebSockets on both workers, signal, and check each gets close 1001. `silent` of them never answer
        the close: the server must still exit 0 once --close-timeout passes. When every peer answers, the server
        must not wait for --close-timeout (60 s) at all: the exit is awaited for 15 s."""
        with wsr.Server("--threads", "2", "--close-timeout", close_timeout) as srv:
            conns = [wsr.RawWS(srv.port, "/echo" if i % 2 else "/websocket", seed=i) for i in range(8)]
            http = wsr.HttpConn(srv.port)
            http.request("GET", "/healthz")
            self.assertEqual(http.read_response().status, 200)   # an idle keep-alive HTTP connection too
            try:
                for i, ws in enumerate(conns):
                    self.assertEqual(ws.echo(b"m%d" % i)[0], wsr.OP_BIN)
                srv.signal(sig)
                for i, ws in enumerate(conns):
                    f = ws.expect_close(1001, reply=(i >= silent), eof_timeout=10 * wsr.SLOW)
                    self.assertTrue(f.fin)
                rc = srv.wait(15 * wsr.SLOW)
                self.assertEqual(rc, 0, "exit status %r; stderr:\n%s" % (rc, srv.stderr()))
                self.assertTrue(http.at_eof(5 * wsr.SLOW))
            finally:
                for ws in conns:
                    ws.close()
                http.close()

    def test_second_signal_exits_at_once(self):
        """A peer that never answers the 1001 would hold the exit for --close-timeout (60 s here); a second SIGTERM
        ends the process at once, with status 1."""
        import time
        with wsr.Server("--threads", "1", "--close-timeout", "60") as srv:
            ws = wsr.RawWS(srv.port, "/echo", seed=7)
            try:
                self.assertEqual(ws.echo(b"x")[0], wsr.OP_BIN)
                srv.signal(signal.SIGTERM)
                ws.expect_close(1001, reply=False, wait_eof=False)
                self.assertIsNone(srv.wait(0.5), "exited before the close timeout without a second signal")
                t0 = time.monotonic()
                srv.signal(signal.SIGTERM)
                rc = srv.wait(10 * wsr.SLOW)
                self.assertEqual(rc, 1, "exit status %r after the second signal" % (rc,))
                self.assertLess(time.monotonic() - t0, 5 * wsr.SLOW)
            finally:
                ws.close()

    def test_sigterm(self):
        self.run_shutdown(signal.SIGTERM)

    def test_sigint(self):
        self.run_shutdown(signal.SIGINT)

    def test_sigterm_with_peers_that_never_answer(self):
        self.run_shutdown(signal.SIGTERM, silent=3, close_timeout=1)

    def test_sigterm_idle_server(self):
        with wsr.Server("--threads", "2") as srv:
            self.assertEqual(srv.stop(), 0, srv.stderr())

    def test_python_client_sees_1001(self):
        import asyncio
        import websockets

        with wsr.Server("--threads", "1", "--close-timeout", "60") as srv:
            async def go():
                async with websockets.connect(srv.url("/echo"), open_timeout=10 * wsr.SLOW,
                                              close_timeout=2 * wsr.SLOW) as ws:
                    await ws.send("x")
                    await ws.recv()
                    srv.signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(ws.recv(), 10 * wsr.SLOW)
                    except websockets.ConnectionClosed as e:
                        return e.rcvd.code if e.rcvd else None
                    return "no close"
            self.assertEqual(wsr.ws_run(go), 1001)
            self.assertEqual(srv.wait(15 * wsr.SLOW), 0, srv.stderr())


if __name__ == "__main__":
    wsr.main()
