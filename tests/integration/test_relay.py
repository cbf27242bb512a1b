"""Relay channels (/relay/<name>) with --threads 2: fan-out to 200 members spread over both workers from 3 concurrent
publishers (every message exactly once, in each publisher's order, text stays text, binary stays binary), channel
names, ?echo=1, channel isolation, and the slow-consumer policies (close with 1013, or drop whole messages), with
/metrics agreeing with what was sent."""
import asyncio
import os
import socket
import struct
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402
from test_metrics import fetch, val, wait_for  # noqa: E402

MEMBERS = 200
PUBLISHERS = 3
PER_PUB = 40


def relay_msg(pub, seq):
    """Publisher pub's message seq: text on even seq, binary on odd, so both kinds are checked."""
    body = "p%d:%d:%s" % (pub, seq, "x" * (seq % 7))
    return body if seq % 2 == 0 else body.encode()


def sum_members(s):
    return [v for (n, lab), v in sorted(s.items(), key=lambda kv: sorted(kv[0][1])) if n == "wsrelay_relay_members"]


class Relay(wsr.ServerTestCase):
    FLAGS = ("--threads", "2", "--close-timeout", "30")

    def test_fanout_200_members_3_publishers(self):
        import websockets
        url = self.server.url("/relay/fan.out-1")
        before = {}
        with self.http() as h:
            before = fetch(h)

        async def go():
            kw = dict(max_size=None, open_timeout=10 * wsr.SLOW, close_timeout=2 * wsr.SLOW, compression=None)
            subs = []
            for _ in range(MEMBERS):
                subs.append(await websockets.connect(url, **kw))
            pubs = [await websockets.connect(url, **kw) for _ in range(PUBLISHERS)]
            # Every member joined before its 101 left the server: the metrics count them all now.
            with self.http() as h:
                per_worker = sum_members(fetch(h))
            self.assertEqual(sum(per_worker), MEMBERS + PUBLISHERS)
            self.assertEqual(len(per_worker), 2)
            self.assertTrue(all(v > 0 for v in per_worker), "members not spread over both workers: %r" % per_worker)

            async def publish(i):
                for seq in range(PER_PUB):
                    await pubs[i].send(relay_msg(i, seq))
                    if seq % 5 == 0:
                        await asyncio.sleep(0)   # let the publishers interleave

            async def collect(ws, n):
                return [await ws.recv() for _ in range(n)]

            recv_tasks = [asyncio.ensure_future(collect(s, PUBLISHERS * PER_PUB)) for s in subs]
            recv_tasks += [asyncio.ensure_future(collect(p, (PUBLISHERS - 1) * PER_PUB)) for p in pubs]
            await asyncio.gather(*(publish(i) for i in range(PUBLISHERS)))
            got = await asyncio.gather(*recv_tasks)
            # Nothing extra may follow: a last marker from publisher 0 must be the next message everywhere.
            await pubs[0].send("end")
            nxt = await asyncio.gather(*(ws.recv() for ws in subs + pubs[1:]))
            for ws in subs + pubs:
                await ws.close()
            return got, nxt

        got, nxt = wsr.ws_run(go, 120 * wsr.SLOW)
        for k, msgs in enumerate(got):
            is_pub = k >= MEMBERS
            me = k - MEMBERS if is_pub else None
            by_pub = {}
            for m in msgs:
                text = m if isinstance(m, str) else m.decode()
                pub, seq = (int(x.lstrip("p")) for x in text.split(":")[:2])
                self.assertEqual(m, relay_msg(pub, seq), "member %d: type or bytes changed" % k)
                self.assertNotEqual(pub, me, "publisher %r got its own message without ?echo=1" % me)
                by_pub.setdefault(pub, []).append(seq)
            want = {p: list(range(PER_PUB)) for p in range(PUBLISHERS) if p != me}
            self.assertEqual(by_pub, want, "member %d: not every message once in publish order" % k)
        self.assertEqual(nxt, ["end"] * len(nxt))

        deliveries = MEMBERS * (PUBLISHERS * PER_PUB + 1) + PUBLISHERS * (PUBLISHERS - 1) * PER_PUB + 2
        with self.http() as h:
            wait_for(lambda: val(fetch(h), "wsrelay_relay_deliveries_total")
                     - val(before, "wsrelay_relay_deliveries_total") >= deliveries, "deliveries to be counted")
            after = fetch(h)
        self.assertEqual(val(after, "wsrelay_relay_deliveries_total") - val(before, "wsrelay_relay_deliveries_total"),
                         deliveries)
        self.assertEqual(val(after, "wsrelay_messages_in_total", endpoint="relay")
                         - val(before, "wsrelay_messages_in_total", endpoint="relay"), PUBLISHERS * PER_PUB + 1)

    def test_echo_param_and_isolation(self):
        a = self.raw("/relay/iso-a?echo=1", seed=1)
        b = self.raw("/relay/iso-a", seed=2)
        other = self.raw("/relay/iso-b", seed=3)
        try:
            a.send_frame(wsr.OP_TEXT, "one")
            self.assertEqual(a.recv_message(), (wsr.OP_TEXT, b"one"))    # ?echo=1: the sender gets it too
            self.assertEqual(b.recv_message(), (wsr.OP_TEXT, b"one"))
            b.send_fragments(wsr.OP_BIN, [b"fr", b"ag", b""])             # a fragmented message relays whole
            self.assertEqual(a.recv_message(), (wsr.OP_BIN, b"frag"))
            other.send_frame(wsr.OP_TEXT, "elsewhere")
            b.send_frame(wsr.OP_TEXT, "two")
            self.assertEqual(a.recv_message(), (wsr.OP_TEXT, b"two"))     # nothing from channel iso-b came first
            b.send_frame(wsr.OP_PING, b"pp")
            f = b.recv_frame()     # b's own "frag" and "two" must not come back first (no ?echo=1)
            self.assertEqual((f.opcode, f.payload), (wsr.OP_PONG, b"pp"))
            a.close_cleanly()
            b.close_cleanly()
        finally:
            for c in (a, b, other):
                c.close()

    def test_channel_names(self):
        ok = ["a", "A-z_0.9", "n" * 64]
        bad = ["", "n" * 65, "sp%20ace", "sl/ash", "caf%C3%A9", "a:b"]
        for name in ok:
            ws = self.raw("/relay/" + name)
            ws.close_cleanly()
        for name in bad:
            with self.raw("/relay/" + name, handshake=False) as ws:
                ws.send(ws.handshake_bytes())
                r = wsr.parse_head(ws.read_until(b"\r\n\r\n"))
                self.assertEqual(r.status, 400, "name %r" % name)
        with self.raw("/relayx", handshake=False) as ws:
            ws.send(ws.handshake_bytes())
            self.assertEqual(wsr.parse_head(ws.read_until(b"\r\n\r\n")).status, 404)


class Reader(threading.Thread):
    """Reads relay messages on a thread and records their sequence numbers (payloads are checked)."""

    def __init__(self, ws, size):
        super().__init__(daemon=True)
        self.ws, self.size, self.seqs, self.err = ws, size, [], None
        self.cv = threading.Condition()

    def run(self):
        try:
            while True:
                op, p = self.ws.recv_message()
                seq = struct.unpack("!I", p[:4])[0]
                if op != wsr.OP_BIN or p != payload(seq, self.size):
                    raise AssertionError("message %d damaged" % seq)
                with self.cv:
                    self.seqs.append(seq)
                    self.cv.notify_all()
                if seq == 0xFFFFFFFF:
                    return
        except Exception as e:  # reported by the test thread
            with self.cv:
                self.err = e
                self.cv.notify_all()

    def wait_count(self, n):
        with self.cv:
            ok = self.cv.wait_for(lambda: len(self.seqs) >= n or self.err, 20 * wsr.SLOW)
        if self.err:
            raise self.err
        if not ok:
            raise AssertionError("fast reader stuck at %d of %d" % (len(self.seqs), n))


def payload(seq, size):
    return struct.pack("!I", seq) + bytes([seq & 0xFF]) * (size - 4)


class SlowConsumer(unittest.TestCase):
    SIZE = 16384

    def run_policy(self, policy, check):
        """One member never reads; two read on threads; one publisher sends until the server acts on the slow one
        (bounded), then 32 more. The publisher never runs more than 4 messages ahead of the fast readers, so only
        the slow member can pass --max-backlog. Then check(srv, slow, pub, readers, sent, metrics, http) runs
        while the server is still up."""
        with wsr.Server("--threads", "2", "--max-backlog", "256K", "--slow-consumer", policy,
                        "--close-timeout", "30") as srv:
            http = wsr.HttpConn(srv.port)
            slow = wsr.RawWS(srv.port, "/relay/slow", seed=1, rcvbuf=16384)
            fast = [wsr.RawWS(srv.port, "/relay/slow", seed=2 + i) for i in range(2)]
            pub = wsr.RawWS(srv.port, "/relay/slow", seed=9)
            readers = [Reader(f, self.SIZE) for f in fast]
            for r in readers:
                r.start()
            key = "close" if policy == "close" else "drop"
            try:
                sent, acted_at = 0, None
                while acted_at is None or sent < acted_at + 32:
                    if sent >= 4096:   # 64 MiB: far past every buffer; the policy never fired
                        raise AssertionError("no slow-consumer action after %d messages" % sent)
                    pub.send_frame(wsr.OP_BIN, payload(sent, self.SIZE))
                    sent += 1
                    for r in readers:
                        r.wait_count(sent - 4)
                    if acted_at is None and sent % 16 == 0 and \
                            val(fetch(http), "wsrelay_relay_slow_consumer_total", action=key) > 0:
                        acted_at = sent
                for r in readers:
                    r.wait_count(sent)
                    self.assertEqual(r.seqs, list(range(sent)))     # the others lost nothing
                check(srv, slow, pub, readers, sent, fetch(http), http)
            finally:
                for c in [slow, pub, http] + fast:
                    c.close()

    def test_close_1013(self):
        self.run_policy("close", self.check_close)

    def check_close(self, srv, slow, pub, readers, sent, s, http):
        self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="close"), 1)
        self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="drop"), 0)
        self.assertEqual(val(s, "wsrelay_close_codes_sent_total", code="1013"), 1)
        # The slow member now reads: a prefix of the stream, every frame whole, then close 1013.
        slow.sock.settimeout(wsr.IO_TIMEOUT)
        n = 0
        while True:
            f = slow.recv_frame()
            if f.opcode == wsr.OP_CLOSE:
                self.assertEqual(f.close_code(), 1013)
                break
            self.assertEqual((f.opcode, f.payload), (wsr.OP_BIN, payload(n, self.SIZE)))
            n += 1
        self.assertLess(n, sent)
        slow.send_close(1013)
        self.assertTrue(slow.at_eof())
        slow.close()
        pub.close_cleanly()
        for r in readers:
            r.ws.sock.shutdown(socket.SHUT_RDWR)   # wakes the reader thread's recv; close() alone would not
            r.join(10 * wsr.SLOW)
            r.ws.close()
        self.assertEqual(srv.stop(), 0)

    def test_drop_whole_messages(self):
        self.run_policy("drop", self.check_drop)

    def check_drop(self, srv, slow, pub, readers, sent, s, http):
        drops = val(s, "wsrelay_relay_slow_consumer_total", action="drop")
        self.assertGreater(drops, 0)
        self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="close"), 0)
        # The slow member reads everything queued: an increasing subsequence of whole messages, exactly `drops`
        # of them missing; then it is still a member and gets the next message.
        got = []
        while len(got) + drops < sent:
            op, p = slow.recv_message()
            seq = struct.unpack("!I", p[:4])[0]
            self.assertEqual((op, p), (wsr.OP_BIN, payload(seq, self.SIZE)))
            got.append(seq)
        self.assertEqual(got, sorted(set(got)))
        self.assertLess(got[-1], sent)
        pub.send_frame(wsr.OP_BIN, payload(0xFFFFFFFF, self.SIZE))
        self.assertEqual(slow.recv_message(), (wsr.OP_BIN, payload(0xFFFFFFFF, self.SIZE)))
        slow.close_cleanly()
        pub.close_cleanly()
        for r in readers:
            r.join(10 * wsr.SLOW)
            r.ws.close()
        self.assertEqual(srv.stop(), 0)


class LongMessage(unittest.TestCase):
    """A message longer than --max-backlog goes to a member that is level with the stream, and a member reading as
    fast as it can must not be judged slow while it drains: the next message right behind it is delivered too (an
    8 MiB message fills the socket a few MiB at a time, so until it has all left, everything queued behind it
    would otherwise count against the 1 MiB limit). Both policies, both I/O backends."""

    def run_policy(self, policy):
        with wsr.Server("--threads", "1", "--slow-consumer", policy) as srv:
            http = wsr.HttpConn(srv.port)
            sub = wsr.RawWS(srv.port, "/relay/long", seed=5)
            pub = wsr.RawWS(srv.port, "/relay/long", seed=6)
            try:
                big = payload(1, 8 * 1024 * 1024)
                got = []
                reader = threading.Thread(target=lambda: got.extend(sub.recv_message() for _ in range(3)),
                                          daemon=True)
                reader.start()
                pub.send(pub.frame_bytes(wsr.OP_BIN, big) + pub.frame_bytes(wsr.OP_TEXT, b"right behind") +
                         pub.frame_bytes(wsr.OP_BIN, b"and another"))
                reader.join(30 * wsr.SLOW)
                self.assertFalse(reader.is_alive(), "the member did not get all three messages")
                self.assertEqual(got, [(wsr.OP_BIN, big), (wsr.OP_TEXT, b"right behind"), (wsr.OP_BIN, b"and another")])
                s = fetch(http)
                self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="close"), 0)
                self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="drop"), 0)
                for c in (sub, pub):
                    c.close_cleanly()
                self.assertEqual(srv.stop(), 0)
            finally:
                for c in (sub, pub, http):
                    c.close()

    def test_close_policy(self):
        self.run_policy("close")

    def test_drop_policy(self):
        self.run_policy("drop")


class HalfClose(unittest.TestCase):
    """A member that shuts down its sending side (TCP FIN, no close frame) while messages are queued for it gets
    every one of them, whole, before the server closes the connection, as /echo does with its replies; it gets
    nothing published after its FIN. Both I/O backends."""
    N = 100

    def test_queued_messages_drain_after_fin(self):
        with wsr.Server("--threads", "1", "--max-backlog", "64M") as srv:
            http = wsr.HttpConn(srv.port)
            sub = wsr.RawWS(srv.port, "/relay/half", seed=7)
            pub = wsr.RawWS(srv.port, "/relay/half", seed=8)
            try:
                for seq in range(self.N):
                    pub.send_frame(wsr.OP_BIN, payload(seq, 65536))
                wait_for(lambda: val(fetch(http), "wsrelay_messages_in_total", endpoint="relay") >= self.N,
                         "the server to take every message before the FIN (the member leaves at it)")
                wait_for(lambda: val(fetch(http), "wsrelay_relay_queue_slots") >= 16,
                         "messages to queue for the member that does not read")
                sub.sock.shutdown(socket.SHUT_WR)
                wait_for(lambda: sum(sum_members(fetch(http))) == 1, "the member to leave the channel at its FIN")
                pub.send_frame(wsr.OP_TEXT, b"after the FIN")
                for seq in range(self.N):
                    self.assertEqual(sub.recv_message(), (wsr.OP_BIN, payload(seq, 65536)), "message %d" % seq)
                self.assertTrue(sub.at_eof(), "the server should close once everything is sent")
                self.assertEqual(sub.buf, b"", "nothing after the queued messages")
                pub.close_cleanly()
                self.assertEqual(srv.stop(), 0)
            finally:
                for c in (sub, pub, http):
                    c.close()


class PartialWrites(unittest.TestCase):
    """Frames up to 270 bytes leave packed in a per-worker scratch, longer ones by reference; members that read
    nothing while the publisher sends ~9 MB (more than a socket's send buffer, 4 MiB at most, and the peer's
    receive buffer hold) take them in partial writes after EAGAIN. Every frame must arrive whole, once, in order,
    text as text, on both workers. (Shrinking SO_RCVBUF after the handshake would stall the readers in TCP's
    zero-window probe back-off instead.)"""
    N = 24000

    @staticmethod
    def msg(seq):
        size = 3000 + seq % 5 if seq % 13 == 0 else 4 + (seq * 7) % 300   # 4..303: both sides of the cut
        body = ("%d:" % seq).encode()
        body += bytes([0x61 + seq % 26]) * (size - len(body))
        return (wsr.OP_TEXT, body) if seq % 2 == 0 else (wsr.OP_BIN, body)

    def test_mixed_sizes_partial_writes(self):
        with wsr.Server("--threads", "2", "--max-backlog", "32M", "--close-timeout", "30") as srv:
            http = wsr.HttpConn(srv.port)
            subs = []
            # At least 4 members and some on each worker (the kernel picks the worker).
            while len(subs) < 4 or not all(v > 0 for v in sum_members(fetch(http))):
                self.assertLess(len(subs), 32, "members not on both workers")
                subs.append(wsr.RawWS(srv.port, "/relay/partial", seed=1 + len(subs)))
            pub = wsr.RawWS(srv.port, "/relay/partial", seed=99)
            try:
                for seq in range(self.N):
                    pub.send_frame(*self.msg(seq))
                got = [[] for _ in subs]

                def read(k):   # all at once: a member left unread long backs its zero-window probes off
                    try:
                        for _ in range(self.N):
                            got[k].append(subs[k].recv_message())
                    except Exception as e:  # noqa: BLE001 - reported by the comparison below
                        got[k].append(("error", repr(e)))

                threads = [threading.Thread(target=read, args=(k,), daemon=True) for k in range(len(subs))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60 * wsr.SLOW)
                for k in range(len(subs)):
                    for seq, m in enumerate(got[k]):
                        self.assertEqual(m, self.msg(seq), "member %d, message %d" % (k, seq))
                    self.assertEqual(len(got[k]), self.N, "member %d" % k)
                http.close()
                http = wsr.HttpConn(srv.port)   # the first one may have passed the idle timeout meanwhile
                s = fetch(http)
                self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="close"), 0)
                self.assertEqual(val(s, "wsrelay_relay_slow_consumer_total", action="drop"), 0)
                for c in subs + [pub]:
                    c.close_cleanly()
                self.assertEqual(srv.stop(), 0)
            finally:
                for c in subs + [pub, http]:
                    c.close()


class QueueRing(unittest.TestCase):
    """A member's delivery ring grows to hold a burst its socket does not take (a pointer per queued message) and must
    not stay at that size for the member's whole life: it is freed when a later write to the member (a message, or
    the keep-alive ping on a channel that fell silent) finds the queue empty. /metrics shows the slots allocated
    (wsrelay_relay_queue_slots)."""
    # 400-byte messages: 8 MB, more than the send buffer (4 MiB at most) and the receive buffer hold, so about
    # half stays queued. The member keeps the default SO_RCVBUF: one below loopback's MSS (64 KiB) never opens a
    # window again once full, and the stream then crawls on zero-window probes with exponential back-off.
    N = 20000

    def run_ring(self, ping_interval, after_drain):
        """A burst the member does not read, then all of it read in order; then after_drain(sub, pub, slots); then
        both members leave and their rings must all be given back."""
        with wsr.Server("--threads", "1", "--max-backlog", "32M", "--ping-interval", ping_interval) as srv:
            http = wsr.HttpConn(srv.port)
            conns = [http]
            try:
                def slots():
                    return val(fetch(http), "wsrelay_relay_queue_slots")
                sub = wsr.RawWS(srv.port, "/relay/ring", seed=3)
                conns.append(sub)
                pub = wsr.RawWS(srv.port, "/relay/ring", seed=4)
                conns.append(pub)
                for seq in range(self.N):
                    pub.send_frame(wsr.OP_BIN, b"%019d" % seq + b"!" * 381)
                wait_for(lambda: slots() >= 4096, "the ring to grow to 4096 slots (the burst queued)")
                for seq in range(self.N):
                    self.assertEqual(sub.recv_message(), (wsr.OP_BIN, b"%019d" % seq + b"!" * 381), "message %d" % seq)
                after_drain(sub, pub, slots)
                for c in (sub, pub):
                    c.close_cleanly()
                wait_for(lambda: slots() == 0, "leaving members to give their rings back")
                self.assertEqual(srv.stop(), 0)
            finally:
                for c in conns:
                    c.close()

    def test_freed_by_the_next_delivery(self):
        def after_drain(sub, pub, slots):
            self.assertGreaterEqual(slots(), 4096, "emptied by the burst's own flushes: kept until a later one")
            pub.send_frame(wsr.OP_TEXT, b"after")
            self.assertEqual(sub.recv_message(), (wsr.OP_TEXT, b"after"))
            wait_for(lambda: slots() <= 64, "the ring to be freed")
            pub.send_frame(wsr.OP_TEXT, b"again")   # a fresh ring works
            self.assertEqual(sub.recv_message(), (wsr.OP_TEXT, b"again"))
        self.run_ring("0", after_drain)

    def test_freed_by_the_ping_when_silent(self):
        def after_drain(sub, pub, slots):
            wait_for(lambda: slots() <= 64, "the ping's flush to free the ring", timeout=5 * wsr.SLOW)
            pub.send_frame(wsr.OP_TEXT, b"after")
            self.assertEqual(sub.recv_message(), (wsr.OP_TEXT, b"after"))
        self.run_ring("1", after_drain)


if __name__ == "__main__":
    wsr.main()
