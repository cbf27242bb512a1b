"""Opening handshake (RFC 6455 section 4): 101 with the right accept value, 400/426/404/403 for bad upgrades."""
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402


class Handshake(wsr.ServerTestCase):
    FLAGS = ("--threads", "2")

    def upgrade(self, path="/echo", drop=(), **override):
        """Send an upgrade request with the standard headers, minus `drop`, with `override` values; return the
        response."""
        hs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
              "Sec-WebSocket-Version": "13"}
        for k in drop:
            del hs[k]
        for k, v in override.items():
            hs[k.replace("_", "-")] = v
        r, c = wsr.http_exchange(self.port, wsr.build_request("GET", path, hs))
        c.close()
        return r

    def test_rfc_sample_key(self):
        # RFC 6455 section 1.3: this key gives this accept value.
        self.assertEqual(wsr.accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        r = self.upgrade()
        self.assertEqual(r.status, 101, r)
        self.assertEqual(r.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertIn("websocket", r.header_tokens("upgrade"))
        self.assertIn("upgrade", r.header_tokens("connection"))

    def test_raw_client_accept_for_many_keys(self):
        for seed in range(20):
            with self.raw("/echo", seed=seed) as ws:   # the handshake checks the accept value
                self.assertEqual(ws.echo(b"k%d" % seed), (wsr.OP_BIN, b"k%d" % seed))
                ws.close_cleanly()

    def test_header_tokens_and_case(self):
        # Connection is a token list and header names/values are case-insensitive (RFC 7230, RFC 6455 4.2.1).
        r = self.upgrade(Connection="keep-alive, Upgrade")
        self.assertEqual(r.status, 101, r)
        r = self.upgrade(drop=("Upgrade",), UPGRADE="WebSocket")
        self.assertEqual(r.status, 101, r)

    def test_frame_in_same_packet_as_handshake(self):
        ws = self.raw("/echo", handshake=False)
        ws.handshake(extra=ws.frame_bytes(wsr.OP_TEXT, b"early"))
        self.assertEqual(ws.recv_message(), (wsr.OP_TEXT, b"early"))
        ws.close_cleanly()

    def test_missing_key(self):
        self.assertEqual(self.upgrade(drop=("Sec-WebSocket-Key",)).status, 400)

    def test_bad_keys(self):
        for key in ("abc", "!!!notbase64!!!!!!!!!!!", "AAAAAAAAAAAAAAAAAAAAAAAA" + "AAAA",  # 21 bytes decoded
                    "AAAAAAAAAAAAAAAAAAAA"):                                             # 15 bytes decoded
            with self.subTest(key=key):
                self.assertEqual(self.upgrade(Sec_WebSocket_Key=key).status, 400)

    def test_missing_upgrade_header(self):
        # Without Upgrade this is a plain GET of a WebSocket-only path: not a 101 (400, or 404/426 are tolerable).
        r = self.upgrade(drop=("Upgrade",))
        self.assertNotEqual(r.status, 101)
        self.assertGreaterEqual(r.status, 400)

    def test_wrong_upgrade_value(self):
        self.assertEqual(self.upgrade(Upgrade="h2c").status, 400)

    def test_missing_connection_upgrade(self):
        self.assertEqual(self.upgrade(Connection="keep-alive").status, 400)

    def test_missing_version(self):
        self.assertIn(self.upgrade(drop=("Sec-WebSocket-Version",)).status, (400, 426))

    def test_wrong_version(self):
        for v in ("8", "12", "14"):
            with self.subTest(version=v):
                r = self.upgrade(Sec_WebSocket_Version=v)
                self.assertEqual(r.status, 426, r)
                self.assertIn("13", r.header_tokens("sec-websocket-version"), r)

    def test_upgrade_unknown_path(self):
        for p in ("/nope", "/echoes", "/websocket/x"):
            with self.subTest(path=p):
                self.assertEqual(self.upgrade(path=p).status, 404)

    def test_no_host(self):
        data = (b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        r, c = wsr.http_exchange(self.port, data)
        c.close()
        self.assertEqual(r.status, 400)

    def test_python_client_connects(self):
        self.assertEqual(wsr.ws_exchange(self.server.url("/echo"), ["hi", b"\x00\x01"]), ["hi", b"\x00\x01"])
        self.assertEqual(wsr.ws_exchange(self.server.url("/websocket"), ["hi"]), ["echo:hi"])


class OriginAllowList(wsr.ServerTestCase):
    FLAGS = ("--threads", "1", "--origin", "http://good.example", "--origin", "http://also.example:8080")

    def test_allowed(self):
        for o in ("http://good.example", "http://also.example:8080"):
            with self.raw("/echo", headers={"Origin": o}) as ws:
                self.assertEqual(ws.echo(b"x"), (wsr.OP_BIN, b"x"))
                ws.close_cleanly()

    def test_refused(self):
        for o in ("http://evil.example", "http://good.example.evil", "null"):
            with self.subTest(origin=o):
                ws = self.raw("/echo", headers={"Origin": o}, handshake=False)
                ws.send(ws.handshake_bytes())
                r = wsr.parse_head(ws.read_until(b"\r\n\r\n"))
                ws.close()
                self.assertEqual(r.status, 403, r)


@unittest.skipUnless(wsr.ipv6_available(), "no ::1")
class IPv6(wsr.ServerTestCase):
    HOST = "::1"
    FLAGS = ("--threads", "1")

    def test_banner_and_echo(self):
        self.assertIn("[::1]:%d" % self.port, self.server.banner)
        with self.raw("/websocket") as ws:
            self.assertEqual(ws.echo("v6", wsr.OP_TEXT), (wsr.OP_TEXT, b"echo:v6"))
            ws.close_cleanly()
        self.assertEqual(wsr.ws_exchange(self.server.url("/echo"), [b"six"]), [b"six"])


if __name__ == "__main__":
    wsr.main()
