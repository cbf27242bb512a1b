"""Frames a conforming client never sends: the server must fail the connection with 1002 (protocol), 1007 (invalid
UTF-8) or 1009 (too big), then close TCP, and keep serving everyone else."""
import os
import socket
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402

PROTO, BAD_DATA, TOO_BIG = 1002, 1007, 1009


class Errors(wsr.ServerTestCase):
    FLAGS = ("--threads", "2", "--close-timeout", "2")

    def fails_with(self, code, *frames, path="/echo", wait_eof=False):
        """Send the raw frame bytes in one write after a good handshake and require close `code` (then answer it).
        Whether the server then closes TCP promptly is checked once, in test_echo.PromptClose, so a slow FIN
        cannot make every case slow."""
        with self.raw(path) as ws:
            ws.send(b"".join(f(ws) if callable(f) else f for f in frames))
            ws.expect_close(code, wait_eof=wait_eof)

    def tearDown(self):
        # Whatever happened, the server still answers a fresh client.
        super().tearDown()
        with self.raw("/echo", seed=99) as ws:
            self.assertEqual(ws.echo(b"still here"), (wsr.OP_BIN, b"still here"))
            ws.close_cleanly()

    @staticmethod
    def fr(opcode, payload=b"", **kw):
        return lambda ws: wsr.encode_frame(opcode, payload, key=ws.new_key(), **kw)

    # ---- 1002 ----
    def test_unmasked_frame(self):
        for op, p in ((wsr.OP_TEXT, b"plain"), (wsr.OP_BIN, b""), (wsr.OP_PING, b"x"), (wsr.OP_CLOSE, b"\x03\xe8")):
            with self.subTest(opcode=op):
                self.fails_with(PROTO, self.fr(op, p, mask=False))

    def test_rsv_bits(self):
        for rsv in (1, 2, 4, 7):
            with self.subTest(rsv=rsv):
                self.fails_with(PROTO, self.fr(wsr.OP_TEXT, b"rsv", rsv=rsv))
        self.fails_with(PROTO, self.fr(wsr.OP_PING, b"rsv", rsv=4))

    def test_reserved_opcodes(self):
        for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
            with self.subTest(opcode=op):
                self.fails_with(PROTO, self.fr(op, b"op"))

    def test_control_frame_too_long(self):
        for op in (wsr.OP_PING, wsr.OP_PONG, wsr.OP_CLOSE):
            with self.subTest(opcode=op):
                body = struct.pack("!H", 1000) + b"r" * 124 if op == wsr.OP_CLOSE else b"p" * 126
                self.fails_with(PROTO, self.fr(op, body))

    def test_fragmented_control_frames(self):
        for op in (wsr.OP_PING, wsr.OP_PONG, wsr.OP_CLOSE):
            with self.subTest(opcode=op):
                self.fails_with(PROTO, self.fr(op, b"", fin=False))

    def test_continuation_without_start(self):
        self.fails_with(PROTO, self.fr(wsr.OP_CONT, b"orphan"))
        self.fails_with(PROTO, self.fr(wsr.OP_CONT, b"orphan", fin=False))

    def test_continuation_after_finished_message(self):
        self.fails_with(PROTO, self.fr(wsr.OP_TEXT, b"done"), self.fr(wsr.OP_CONT, b"late"))

    def test_new_message_inside_fragmented_one(self):
        self.fails_with(PROTO, self.fr(wsr.OP_TEXT, b"a", fin=False), self.fr(wsr.OP_BIN, b"b"))
        self.fails_with(PROTO, self.fr(wsr.OP_BIN, b"a", fin=False), self.fr(wsr.OP_BIN, b"b", fin=False))

    def test_bad_lengths(self):
        # core/ws_session.h: non-minimal length encodings and a 64-bit length with the top bit set are errors.
        self.fails_with(PROTO, self.fr(wsr.OP_BIN, b"short", len_form=16))
        self.fails_with(PROTO, self.fr(wsr.OP_BIN, b"x" * 200, len_form=64))
        self.fails_with(PROTO, lambda ws: struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + b"\x01\x02\x03\x04")

    def test_invalid_close_codes(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
            with self.subTest(code=code):
                self.fails_with(PROTO, self.fr(wsr.OP_CLOSE, struct.pack("!H", code)))

    def test_one_byte_close(self):
        self.fails_with(PROTO, self.fr(wsr.OP_CLOSE, b"\x03"))

    # ---- 1007 ----
    def test_invalid_utf8_text(self):
        bad = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80",            # 0xFF, overlong '/', UTF-16 surrogate
               b"\xf4\x90\x80\x80", b"ok\x80", b"\xe2\x82",      # > U+10FFFF, lone continuation, truncated at end
               b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"]
        for b in bad:
            with self.subTest(payload=b):
                self.fails_with(BAD_DATA, self.fr(wsr.OP_TEXT, b))
        # /websocket validates too.
        self.fails_with(BAD_DATA, self.fr(wsr.OP_TEXT, b"\xff"), path="/websocket")

    def test_invalid_utf8_split_across_fragments(self):
        # F0 90 | 28 ...: the second fragment breaks a 4-byte sequence started in the first.
        self.fails_with(BAD_DATA, self.fr(wsr.OP_TEXT, b"ab\xf0\x90", fin=False), self.fr(wsr.OP_CONT, b"\x28xx"))
        # A message that ends inside a sequence, the final fragment being empty.
        self.fails_with(BAD_DATA, self.fr(wsr.OP_TEXT, b"ab\xe2\x82", fin=False), self.fr(wsr.OP_CONT, b""))

    def test_invalid_utf8_detected_before_message_end(self):
        # The first fragment is already invalid; the server may fail it without waiting for the rest (fast fail),
        # or when the message completes: either way, 1007.
        self.fails_with(BAD_DATA, self.fr(wsr.OP_TEXT, b"\xff", fin=False), self.fr(wsr.OP_CONT, b"rest"))

    def test_invalid_utf8_close_reason(self):
        self.fails_with(BAD_DATA, self.fr(wsr.OP_CLOSE, struct.pack("!H", 1000) + b"bad \xff reason"))

    def test_binary_is_not_validated(self):
        with self.raw("/echo") as ws:
            self.assertEqual(ws.echo(b"\xff\xfe", wsr.OP_BIN), (wsr.OP_BIN, b"\xff\xfe"))
            ws.close_cleanly()


class Limits(wsr.ServerTestCase):
    FLAGS = ("--threads", "1", "--max-message", "1000")

    def test_at_limit_works(self):
        with self.raw("/echo") as ws:
            data = bytes(range(250)) * 4
            self.assertEqual(ws.echo(data), (wsr.OP_BIN, data))
            ws.send_fragments(wsr.OP_BIN, [data[:500], data[500:]])
            self.assertEqual(ws.recv_message(), (wsr.OP_BIN, data))
            ws.close_cleanly()

    def test_frame_over_limit(self):
        with self.raw("/echo") as ws:
            ws.send_frame(wsr.OP_BIN, b"x" * 1001)
            ws.expect_close(TOO_BIG, wait_eof=False)

    def test_declared_huge_frame(self):
        # Only the header of a 1 GiB frame: the server must refuse on the length, before any payload.
        with self.raw("/echo") as ws:
            ws.send(wsr.encode_frame(wsr.OP_BIN, b"", key=ws.new_key(), length=1 << 30))
            ws.expect_close(TOO_BIG, wait_eof=False)

    def test_fragmented_message_over_limit(self):
        with self.raw("/echo") as ws:
            ws.send_fragments(wsr.OP_TEXT, [b"a" * 600, b"b" * 401])
            ws.expect_close(TOO_BIG, wait_eof=False)
        with self.raw("/echo") as ws:
            ws.send_fragments(wsr.OP_BIN, [b"a" * 100] * 11)
            ws.expect_close(TOO_BIG, wait_eof=False)


class CloseThenFin(wsr.ServerTestCase):
    """The peer's close frame and its FIN arrive back to back. Every such connection must be released at once: with
    --max-connections 4 and --close-timeout 60, a connection the server kept would use up a slot (and hold up the
    SIGTERM exit checked by tearDownClass)."""
    FLAGS = ("--threads", "1", "--max-connections", "4", "--close-timeout", "60")

    def test_reply_and_fin_together(self):
        for i in range(90):
            with self.raw("/echo", seed=i) as ws:   # a leaked slot shows up as a 503 here, naming the round
                kind = i % 3
                if kind == 0:      # server-initiated 1002, answered and FIN at once
                    ws.send_frame(wsr.OP_TEXT, b"x", mask=False)
                elif kind == 1:    # server-initiated 1007, answered and FIN at once
                    ws.send_frame(wsr.OP_TEXT, b"\xff")
                if kind in (0, 1):
                    f = ws.recv_frame()
                    self.assertEqual(f.close_code(), (PROTO, BAD_DATA)[kind], "round %d" % i)
                    ws.send(ws.frame_bytes(wsr.OP_CLOSE, f.payload[:2]))
                else:              # client-initiated close followed by FIN
                    ws.send(ws.frame_bytes(wsr.OP_CLOSE, struct.pack("!H", 1000)))
                ws.sock.shutdown(socket.SHUT_WR)
                self.assertTrue(ws.at_eof(), "round %d: server did not close TCP" % i)
        # All 4 slots are free again (the count may lag by an event-loop turn: retry briefly).
        for attempt in range(50):
            conns = []
            try:
                for k in range(4):
                    conns.append(self.raw("/echo", seed=100 + k))
                for ws in conns:
                    self.assertEqual(ws.echo(b"slot"), (wsr.OP_BIN, b"slot"))
                break
            except (AssertionError, wsr.Closed, ConnectionResetError, BrokenPipeError):
                if attempt == 49:
                    raise AssertionError("connections closed with close+FIN still hold --max-connections slots")
                time.sleep(0.1)
            finally:
                for ws in conns:
                    ws.close()


if __name__ == "__main__":
    wsr.main()
