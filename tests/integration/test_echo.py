"""Echo endpoints: /websocket (`echo:` prefix, same opcode), /echo (exact) for sizes up to 16 MiB, whole and
fragmented; ping/pong; the close handshake."""
import os
import random
import struct
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402

MiB = 1 << 20
SIZES = [0, 125, 126, 65535, 65536, MiB]
BIG = 16 * MiB
# Sanitized builds are ~3x slower: the 16 MiB message still runs, but once (whole), and fragmented runs use 4 MiB.
BIG_FRAGMENTED = 4 * MiB if wsr.SAN else BIG


def payload(n, seed):
    return random.Random(seed).randbytes(n)


def text_payload(n, seed):
    """Valid UTF-8 of exactly n bytes mixing 1-, 2-, 3- and 4-byte sequences."""
    rng = random.Random(seed)
    pieces = ["a", "é", "€", "\U0001F600"]
    out, size = [], 0
    while size < n:
        p = pieces[rng.randrange(4)]
        b = len(p.encode())
        if size + b > n:
            p, b = "z", 1
        out.append(p)
        size += b
    return "".join(out).encode()


def split_plan(n, seed, max_parts=7):
    """Cut n bytes into 2..max_parts fragments at seeded offsets; empty fragments allowed."""
    rng = random.Random(seed)
    k = rng.randrange(2, max_parts + 1)
    cuts = sorted(rng.randrange(0, n + 1) for _ in range(k - 1))
    return [0] + cuts + [n]


def fragments(data, seed):
    plan = split_plan(len(data), seed)
    return [data[a:b] for a, b in zip(plan, plan[1:])]


class Echo(wsr.ServerTestCase):
    FLAGS = ("--threads", "2", "--close-timeout", "2")

    # ---- /websocket: "echo:" prefix, same opcode ----
    def test_prefix_text_and_binary_raw(self):
        with self.raw("/websocket") as ws:
            self.assertEqual(ws.echo("hello", wsr.OP_TEXT), (wsr.OP_TEXT, b"echo:hello"))
            self.assertEqual(ws.echo("h\u00e9\u20ac\U0001F600".encode(), wsr.OP_TEXT),
                             (wsr.OP_TEXT, "echo:h\u00e9\u20ac\U0001F600".encode()))
            self.assertEqual(ws.echo(b"\x00\xff\x80", wsr.OP_BIN), (wsr.OP_BIN, b"echo:\x00\xff\x80"))
            self.assertEqual(ws.echo(b"", wsr.OP_TEXT), (wsr.OP_TEXT, b"echo:"))
            self.assertEqual(ws.echo(b"", wsr.OP_BIN), (wsr.OP_BIN, b"echo:"))
            big = payload(70000, 7)
            self.assertEqual(ws.echo(big, wsr.OP_BIN), (wsr.OP_BIN, b"echo:" + big))
            ws.close_cleanly()

    def test_prefix_fragmented(self):
        with self.raw("/websocket") as ws:
            ws.send_fragments(wsr.OP_TEXT, [b"frag", b"", b"mented"])
            self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, b"echo:fragmented"))
            ws.close_cleanly()

    def test_prefix_python_client(self):
        got = wsr.ws_exchange(self.server.url("/websocket"), ["text", b"bin\x00", "", b""])
        self.assertEqual(got, ["echo:text", b"echo:bin\x00", "echo:", b"echo:"])
        self.assertIsInstance(got[0], str)   # text stays text
        self.assertIsInstance(got[1], bytes)  # binary stays binary

    # ---- /echo: exact, all sizes, whole and fragmented ----
    def check_sizes(self, sizes, fragmented, opcode=wsr.OP_BIN):
        with self.raw("/echo") as ws:
            for n in sizes:
                with self.subTest(size=n, fragmented=fragmented, opcode=opcode):
                    data = text_payload(n, n) if opcode == wsr.OP_TEXT else payload(n, n)
                    if fragmented:
                        parts = fragments(data, n + 1)
                        frames = b"".join(ws.frame_bytes(opcode if i == 0 else wsr.OP_CONT, p, fin=i == len(parts) - 1)
                                          for i, p in enumerate(parts))
                    else:
                        frames = ws.frame_bytes(opcode, data)
                    ws.send_in_background(frames)
                    op, got = ws.recv_message()
                    ws.join_sender()
                    self.assertEqual(op, opcode)
                    self.assertEqual(len(got), n)
                    self.assertTrue(got == data, "payload differs for size %d" % n)
            ws.close_cleanly()

    def test_echo_sizes_whole(self):
        self.check_sizes(SIZES + [BIG], fragmented=False)

    def test_echo_sizes_fragmented(self):
        self.check_sizes(SIZES + [BIG_FRAGMENTED], fragmented=True)

    def test_echo_text_fragmented_mid_codepoint(self):
        # split_plan cuts at arbitrary byte offsets, so multi-byte sequences are split across frames: still valid.
        self.check_sizes([1, 2, 3, 4, 5, 7, 126, 1000, 65536], fragmented=True, opcode=wsr.OP_TEXT)

    def test_echo_every_byte_split_of_a_4byte_char(self):
        s = "x\U0001F600y".encode()
        with self.raw("/echo") as ws:
            for cut in range(len(s) + 1):
                ws.send_fragments(wsr.OP_TEXT, [s[:cut], s[cut:]])
                self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, s), "cut at %d" % cut)
            ws.close_cleanly()

    def test_echo_python_client(self):
        msgs = [b"", b"x" * 125, payload(126, 1), payload(65536, 2), payload(MiB, 3), "text \u00e9"]
        self.assertEqual(wsr.ws_exchange(self.server.url("/echo"), msgs), msgs)

    def test_echo_python_client_fragmented(self):
        # websockets sends an iterable as one fragmented message.
        import websockets

        async def go():
            async with websockets.connect(self.server.url("/echo"), max_size=None, compression=None,
                                          open_timeout=10 * wsr.SLOW, close_timeout=2 * wsr.SLOW) as ws:
                await ws.send([b"ab", b"", b"cd" * 40000])
                return await ws.recv()
        self.assertEqual(wsr.ws_run(go), b"ab" + b"cd" * 40000)

    def test_many_messages_in_one_write(self):
        with self.raw("/echo") as ws:
            msgs = [b"m%d" % i * (i % 7) for i in range(200)]
            ws.send(b"".join(ws.frame_bytes(wsr.OP_BIN, m) for m in msgs))
            for m in msgs:
                self.assertEqual(ws.recv_message(), (wsr.OP_BIN, m))
            ws.close_cleanly()

    def test_long_replies_mixed_in_one_write(self):
        """Long and short messages in one write, both opcodes, every length form, one longer than a standard buffer
        (256 KiB), then a long frame cut in two, one at a time, and a reply followed by part of the next frame: all
        must come back whole and in order."""
        sizes = [16384, 5, 16383, 70000, 0, 65536, 20000, 125, 16385, 300000, 16384]
        msgs = [(wsr.OP_TEXT if i % 3 == 1 else wsr.OP_BIN,
                 b"x" * n if i % 3 == 1 else payload(n, 40 + i)) for i, n in enumerate(sizes)]
        with self.raw("/echo") as ws:
            data = b"".join(ws.frame_bytes(op, m) for op, m in msgs)
            tail = ws.frame_bytes(wsr.OP_BIN, payload(50000, 99))
            ws.send(data + tail[:30000])        # the last frame arrives in two parts
            for op, m in msgs:
                self.assertEqual(ws.recv_message(), (op, m))
            ws.send(tail[30000:])
            self.assertEqual(ws.recv_message(), (wsr.OP_BIN, payload(50000, 99)))
            for n in (40000, 3, 40000):         # one at a time too: each batch ends with its own reply
                ws.send_frame(wsr.OP_BIN, payload(n, n))
                self.assertEqual(ws.recv_message(), (wsr.OP_BIN, payload(n, n)))
            nxt = ws.frame_bytes(wsr.OP_TEXT, b"z" * 30000)
            ws.send(ws.frame_bytes(wsr.OP_BIN, payload(40000, 7)) + nxt[:1000])   # a reply, then part of a frame
            self.assertEqual(ws.recv_message(), (wsr.OP_BIN, payload(40000, 7)))
            ws.send(nxt[1000:])
            self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, b"z" * 30000))
            ws.close_cleanly()

    def test_byte_at_a_time(self):
        with self.raw("/echo") as ws:
            frame = ws.frame_bytes(wsr.OP_TEXT, b"dribble") + ws.frame_bytes(wsr.OP_BIN, payload(300, 9))
            for i in range(len(frame)):
                ws.send(frame[i:i + 1])
            self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, b"dribble"))
            self.assertEqual(ws.recv_message(), (wsr.OP_BIN, payload(300, 9)))
            ws.close_cleanly()

    # ---- ping / pong ----
    def test_ping_pong(self):
        with self.raw("/echo") as ws:
            for p in (b"", b"p", payload(125, 4)):
                ws.send_frame(wsr.OP_PING, p)
                f = ws.recv_frame()
                self.assertEqual((f.fin, f.opcode, f.payload), (True, wsr.OP_PONG, p))
            ws.close_cleanly()

    def test_ping_between_fragments(self):
        # RFC 6455 section 5.4: control frames may be injected in the middle of a fragmented message.
        with self.raw("/echo") as ws:
            ws.send(ws.frame_bytes(wsr.OP_TEXT, b"one ", fin=False) + ws.frame_bytes(wsr.OP_PING, b"mid")
                    + ws.frame_bytes(wsr.OP_CONT, b"two"))
            f = ws.recv_frame()
            self.assertEqual((f.opcode, f.payload), (wsr.OP_PONG, b"mid"))
            self.assertEqual(ws.recv_message(skip_control=False), (wsr.OP_TEXT, b"one two"))
            ws.close_cleanly()

    def test_unsolicited_pong_ignored(self):
        with self.raw("/echo") as ws:
            ws.send_frame(wsr.OP_PONG, b"nobody asked")
            ws.send_frame(wsr.OP_TEXT, b"after")
            f = ws.recv_frame()
            self.assertEqual((f.opcode, f.payload), (wsr.OP_TEXT, b"after"))
            ws.close_cleanly()

    # ---- close handshake ----
    def test_close_codes_echoed(self):
        for code in (1000, 1001, 1003, 1011, 3000, 4999):
            with self.subTest(code=code), self.raw("/echo") as ws:
                ws.send_close(code, b"bye")
                f = ws.expect_close(code, reply=False, wait_eof=False)
                self.assertTrue(f.fin)

    def test_close_after_messages(self):
        with self.raw("/websocket") as ws:
            ws.send(ws.frame_bytes(wsr.OP_TEXT, b"last") + ws.frame_bytes(wsr.OP_CLOSE, struct.pack("!H", 1000)))
            self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, b"echo:last"))
            ws.expect_close(1000, reply=False, wait_eof=False)

    def test_empty_close_answered_empty(self):
        with self.raw("/echo") as ws:
            ws.send_close(None)
            f = ws.expect_close(None, reply=False, wait_eof=False)
            self.assertEqual(f.payload, b"")

    def test_python_client_close_code(self):
        import websockets

        async def go():
            ws = await websockets.connect(self.server.url("/echo"), open_timeout=10 * wsr.SLOW,
                                          close_timeout=2 * wsr.SLOW)
            await ws.close(1000, "done")
            return ws.close_code
        self.assertEqual(wsr.ws_run(go), 1000)


class PromptClose(wsr.ServerTestCase):
    """Once the close handshake is complete the server closes TCP right away, not when --close-timeout (60 s here)
    runs out. IO_TIMEOUT (10 s) bounds the wait."""
    FLAGS = ("--threads", "1", "--close-timeout", "60")

    def test_after_client_close(self):
        # Spec: "a close from the client is answered with a close echoing its code and then the server closes TCP".
        with self.raw("/echo") as ws:
            ws.send_close(1000)
            ws.expect_close(1000, reply=False)
        with self.raw("/websocket") as ws:
            ws.send_close(None)
            ws.expect_close(None, reply=False)

    def test_after_server_close_answered(self):
        # The server fails the connection (1002, 1007); the client answers with a close: the server must close TCP.
        with self.raw("/echo") as ws:
            ws.send_frame(wsr.OP_TEXT, b"x", mask=False)
            ws.expect_close(1002)
        with self.raw("/echo") as ws:
            ws.send_frame(wsr.OP_TEXT, b"\xff")
            ws.expect_close(1007)


if __name__ == "__main__":
    wsr.main()
