"""GET /metrics: Prometheus text format 0.0.4 that a strict parser accepts, whose counters move by exactly what the
test did (echo messages and bytes, close codes both ways, protocol errors, connections by state), and
--stats-interval's summary line."""
import os
import re
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(r"^(%s)(\{(.*)\})? (\S+)$" % _NAME)
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_metrics(text):
    """Parse exposition text strictly. Returns {(name, frozenset(labels.items())): float}. Raises AssertionError on
    anything the 0.0.4 text format does not allow: a sample without a TYPE for its family, a TYPE after its samples,
    a malformed line or label set, a duplicate series, a counter that is negative or a non-number value."""
    types, seen_family, out = {}, set(), {}
    if not text.endswith("\n"):
        raise AssertionError("exposition does not end with a newline")
    for ln in text.split("\n")[:-1]:
        if ln.startswith("# HELP "):
            continue
        if ln.startswith("# TYPE "):
            parts = ln.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "untyped", "histogram", "summary"):
                raise AssertionError("bad TYPE line %r" % ln)
            if parts[2] in types or parts[2] in seen_family:
                raise AssertionError("TYPE for %s repeated or after its samples" % parts[2])
            types[parts[2]] = parts[3]
            continue
        if ln.startswith("#") or not ln:
            raise AssertionError("unexpected line %r" % ln)
        m = _SAMPLE_RE.match(ln)
        if not m:
            raise AssertionError("bad sample line %r" % ln)
        name, labels_s, value = m.group(1), m.group(3), m.group(4)
        if name not in types:
            raise AssertionError("sample %s has no TYPE line before it" % name)
        seen_family.add(name)
        labels = {}
        if labels_s:
            pos = 0
            while pos < len(labels_s):
                lm = _LABEL_RE.match(labels_s, pos)
                if not lm:
                    raise AssertionError("bad labels in %r" % ln)
                if lm.group(1) in labels:
                    raise AssertionError("label repeated in %r" % ln)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        try:
            v = float(value)
        except ValueError:
            raise AssertionError("bad value in %r" % ln)
        if types[name] == "counter" and (v < 0 or not name.endswith("_total")):
            raise AssertionError("counter %r negative or not named *_total" % ln)
        key = (name, frozenset(labels.items()))
        if key in out:
            raise AssertionError("duplicate series %r" % ln)
        out[key] = v
    return out


def fetch(http):
    """GET /metrics on a keep-alive connection; returns the parsed samples."""
    http.request("GET", "/metrics")
    r = http.read_response()
    if r.status != 200:
        raise AssertionError("/metrics answered %d" % r.status)
    ctype = r.header("content-type") or ""
    if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
        raise AssertionError("/metrics Content-Type %r" % ctype)
    return parse_metrics(r.body.decode())


def val(samples, name, **labels):
    """A series' value; 0 for a labelled series not shown yet (close codes appear once seen)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(pred, what, timeout=None):
    """Poll pred() (bounded) until true; counters are updated by the worker right after its syscall returns, so a
    client can see bytes a moment before the counter moves."""
    deadline = time.monotonic() + (timeout or 5.0 * wsr.SLOW)
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


class Metrics(wsr.ServerTestCase):
    FLAGS = ("--threads", "2")

    def test_format_and_families(self):
        with self.http() as h:
            s = fetch(h)
        names = {k[0] for k in s}
        for fam in ("wsrelay_connections", "wsrelay_accepted_total", "wsrelay_messages_in_total",
                    "wsrelay_messages_out_total", "wsrelay_bytes_in_total", "wsrelay_bytes_out_total",
                    "wsrelay_close_codes_sent_total", "wsrelay_close_codes_received_total",
                    "wsrelay_protocol_errors_total", "wsrelay_backpressure_pauses_total",
                    "wsrelay_relay_deliveries_total", "wsrelay_relay_slow_consumer_total", "wsrelay_relay_channels",
                    "wsrelay_relay_members", "wsrelay_loop_iterations_total"):
            self.assertIn(fam, names)
        for st in ("http", "websocket", "closing", "draining"):
            self.assertIn(("wsrelay_connections", frozenset({"state": st}.items())), s)
        self.assertIn(("wsrelay_protocol_errors_total", frozenset({"kind": "utf8"}.items())), s)
        loops = [v for (n, lab), v in s.items() if n == "wsrelay_loop_iterations_total"]
        self.assertEqual(len(loops), 2)           # one per worker
        self.assertGreater(sum(loops), 0)        # the worker serving this request has looped (an idle one may not)

    def test_parser_rejects_bad_text(self):
        # The parser above must be able to fail, or the format test proves nothing.
        for bad in ("x 1\n", "# TYPE x counter\nx -1\n", "# TYPE x_total counter\nx_total 1\nx_total 2\n",
                    "# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n", "# TYPE x gauge\nx{a=1} 1\n", "# TYPE x gauge\nx 1"):
            with self.assertRaises(AssertionError, msg=bad):
                parse_metrics(bad)

    def test_counters_match_traffic(self):
        with self.http() as h:
            before = fetch(h)
            sizes = [0, 1, 125, 126, 1000, 65536]
            sent_bytes = 0
            ws = self.raw("/echo")
            idle = [self.raw("/websocket", seed=10 + i) for i in range(3)]
            try:
                mid = fetch(h)
                self.assertEqual(val(mid, "wsrelay_connections", state="websocket")
                                 - val(before, "wsrelay_connections", state="websocket"), 4)
                for i, n in enumerate(sizes):
                    payload = bytes([i]) * n
                    frame = ws.frame_bytes(wsr.OP_BIN, payload)
                    sent_bytes += len(frame)
                    ws.send(frame)
                    self.assertEqual(ws.recv_message(), (wsr.OP_BIN, payload))
                ws.send_close(1000)
                sent_bytes += 2 + 4 + 2
                ws.expect_close(1000, reply=False, wait_eof=True)
                bad = self.raw("/echo", seed=99)
                bad.send_frame(wsr.OP_TEXT, b"x", mask=False)    # RFC 6455 section 5.1: must be masked
                bad.expect_close(1002, reply=False)     # a reply would be read, and counted, at some point
                bad.close()
                wait_for(lambda: val(fetch(h), "wsrelay_close_codes_sent_total", code="1002")
                         > val(before, "wsrelay_close_codes_sent_total", code="1002"), "the 1002 to be counted")
                after = fetch(h)
            finally:
                ws.close()
                for c in idle:
                    c.close()

        def d(name, **lab):
            return val(after, name, **lab) - val(before, name, **lab)
        self.assertEqual(d("wsrelay_messages_in_total", endpoint="echo"), len(sizes))
        # replies plus the close echo
        self.assertEqual(d("wsrelay_messages_out_total", endpoint="echo"), len(sizes) + 2)
        # the 1002 close to the unmasked sender, and the 1000 reply
        self.assertEqual(d("wsrelay_bytes_in_total", endpoint="echo"), sent_bytes + 2 + 1)
        want_out = sum(2 + (2 if 126 <= n < 65536 else 8 if n >= 65536 else 0) + n for n in sizes) + 4
        want_out += 2 + 2 + len(b"unmasked")
        want_out += len(ws.response.raw_head) + len(bad.response.raw_head)   # a 101 counts under its endpoint
        self.assertEqual(d("wsrelay_bytes_out_total", endpoint="echo"), want_out)
        self.assertEqual(d("wsrelay_close_codes_received_total", code="1000"), 1)
        self.assertEqual(d("wsrelay_close_codes_sent_total", code="1000"), 1)
        self.assertEqual(d("wsrelay_close_codes_sent_total", code="1002"), 1)
        self.assertEqual(d("wsrelay_protocol_errors_total", kind="unmasked"), 1)
        self.assertEqual(d("wsrelay_accepted_total"), 5)
        self.assertEqual(d("wsrelay_upgrades_total"), 5)

    def test_stats_interval_logs_summary(self):
        with wsr.Server("--threads", "1", "--stats-interval", "0.1") as srv:
            wait_for(lambda: "stats: conns=" in srv.stderr(), "a stats line on stderr")
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    wsr.main()
