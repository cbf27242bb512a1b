"""Static files and HTTP/1.1 behaviour: GET/HEAD, 404/405/400/414/431/505, /healthz, keep-alive and pipelining, and
no path ever escaping the static root."""
import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402

SECRET = b"OUTSIDE-THE-ROOT-7f3a9c secret bytes\n"
INDEX = b"<!doctype html><title>wsrelay test</title><p>index page 41c2</p>\n"
CSS = b"body { color: #123456 }\n"


class StaticRoot:
    """tmp/secret.txt (outside), tmp/root/{index.html, style.css, a.txt, b.txt, sub/c.txt, link -> ../secret.txt,
    linkdir -> .. (outside)}."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="wsr-static-")
        self.root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(self.root, "sub"))
        files = {"index.html": INDEX, "style.css": CSS, "a.txt": b"AAAA\n", "b.txt": b"BB\n",
                 "sub/c.txt": b"C" * 5000}
        for name, data in files.items():
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(data)
        with open(os.path.join(self.tmp, "secret.txt"), "wb") as f:
            f.write(SECRET)
        os.symlink(os.path.join(self.tmp, "secret.txt"), os.path.join(self.root, "link"))
        os.symlink(self.tmp, os.path.join(self.root, "linkdir"))
        os.symlink("../../secret.txt", os.path.join(self.root, "sub", "rel-link"))

    def remove(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class Http(wsr.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.static = StaticRoot()
        cls.FLAGS = ("--threads", "2", "--static", cls.static.root)
        try:
            super().setUpClass()
        except BaseException:
            cls.static.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.static.remove()

    def get(self, path, method="GET", headers=None, version="HTTP/1.1"):
        with self.http() as c:
            c.request(method, path, headers, version)
            return c.read_response(head_request=(method == "HEAD"))

    def raw_request(self, data):
        r, c = wsr.http_exchange(self.port, data)
        c.close()
        return r

    def test_index(self):
        r = self.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type", "").startswith("text/html"), r)
        self.assertEqual(r.header("content-length"), str(len(INDEX)))
        self.assertEqual(r.body, INDEX)
        r = self.get("/index.html")
        self.assertEqual((r.status, r.body), (200, INDEX))

    def test_content_types(self):
        r = self.get("/style.css")
        self.assertEqual((r.status, r.body), (200, CSS))
        self.assertTrue(r.header("content-type", "").startswith("text/css"), r)
        r = self.get("/sub/c.txt")
        self.assertEqual((r.status, r.body), (200, b"C" * 5000))
        self.assertTrue(r.header("content-type", "").startswith("text/plain"), r)

    def test_head_has_no_body(self):
        with self.http() as c:
            # HEAD then GET on one connection: the GET's status line must come right after HEAD's headers.
            c.request("HEAD", "/")
            c.request("GET", "/a.txt")
            h = c.read_response(head_request=True)
            self.assertEqual(h.status, 200, h)
            self.assertEqual(h.header("content-length"), str(len(INDEX)))
            g = c.read_response()
            self.assertEqual((g.status, g.body), (200, b"AAAA\n"))

    def test_not_found(self):
        for p in ("/nope.html", "/sub/nope", "/index.html/x"):
            with self.subTest(path=p):
                self.assertEqual(self.get(p).status, 404)

    def test_method_not_allowed(self):
        for m in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            with self.subTest(method=m):
                r = self.get("/", method=m, headers={"Content-Length": "0"})
                self.assertEqual(r.status, 405, r)
                allow = r.header_tokens("allow")
                self.assertIn("get", allow, r)
                self.assertIn("head", allow, r)

    def test_keepalive_and_pipelining(self):
        with self.http() as c:
            c.send(wsr.build_request("GET", "/a.txt") + wsr.build_request("GET", "/nope")
                   + wsr.build_request("GET", "/b.txt") + wsr.build_request("GET", "/healthz")
                   + wsr.build_request("HEAD", "/style.css") + wsr.build_request("GET", "/sub/c.txt"))
            got = [c.read_response() for _ in range(4)]
            got.append(c.read_response(head_request=True))
            got.append(c.read_response())
            self.assertEqual([r.status for r in got], [200, 404, 200, 200, 200, 200])
            self.assertEqual(got[0].body, b"AAAA\n")
            self.assertEqual(got[2].body, b"BB\n")
            self.assertEqual(got[3].body.strip(), b"ok")
            self.assertEqual(got[5].body, b"C" * 5000)
            # Still open: one more request on the same connection.
            c.request("GET", "/a.txt")
            self.assertEqual(c.read_response().body, b"AAAA\n")

    def test_connection_close_honoured(self):
        with self.http() as c:
            c.request("GET", "/a.txt", {"Connection": "close"})
            r = c.read_response()
            self.assertEqual(r.body, b"AAAA\n")
            self.assertTrue(c.at_eof(), "server kept the connection open after Connection: close")

    def test_healthz(self):
        r = self.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.strip(), b"ok")

    def test_garbage(self):
        for data in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
                     b"GET /\r\n\r\n", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"):
            with self.subTest(data=data):
                self.assertEqual(self.raw_request(data).status, 400)

    def test_uri_too_long(self):
        data = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assertEqual(self.raw_request(data).status, 414)

    def test_header_block_too_large(self):
        hs = [("X-Fill-%d" % i, "v" * 1000) for i in range(20)]   # ~20 KiB over 20 headers
        self.assertEqual(self.raw_request(wsr.build_request("GET", "/", hs)).status, 431)

    def test_long_but_legal_request(self):
        hs = [("X-Fill-%d" % i, "v" * 1000) for i in range(10)]   # ~10 KiB < 16 KiB
        r = self.raw_request(wsr.build_request("GET", "/a.txt", hs))
        self.assertEqual((r.status, r.body), (200, b"AAAA\n"))

    def test_http_version_not_supported(self):
        for v in ("HTTP/2.0", "HTTP/3.0"):
            with self.subTest(version=v):
                self.assertEqual(self.get("/", version=v).status, 505)

    def test_request_split_in_many_writes(self):
        with self.http() as c:
            data = wsr.build_request("GET", "/b.txt")
            for i in range(len(data)):
                c.send(data[i:i + 1])
            self.assertEqual(c.read_response().body, b"BB\n")

    # ---- traversal: never the outside file's bytes ----
    def test_traversal(self):
        paths = ["/../secret.txt", "/../../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                 "/%2E%2E/secret.txt", "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt",
                 "/.%2e/secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
                 "/link", "/linkdir/secret.txt", "/sub/rel-link",
                 "//etc/passwd", "/../../../../../../etc/passwd", "/%2fetc%2fpasswd", "/secret.txt%00.html",
                 "/" + "/".join([".."] * 30) + "/etc/passwd", "%2e%2e/secret.txt", "../secret.txt"]
        for p in paths:
            with self.subTest(path=p):
                r = self.get(p)
                self.assertIn(r.status, (400, 403, 404), r)
                self.assertNotIn(b"OUTSIDE-THE-ROOT", r.body)
                self.assertNotIn(b"root:x:0:0", r.body)

    def test_traversal_absolute_form(self):
        r = self.raw_request(b"GET http://127.0.0.1/../secret.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertNotEqual(r.status, 200)
        self.assertNotIn(b"OUTSIDE-THE-ROOT", r.body)


class DefaultStatic(wsr.ServerTestCase):
    """Without --static the server serves the repo's static/ directory (when it has an index.html)."""
    FLAGS = ("--threads", "1")

    def test_repo_index(self):
        index = os.path.join(wsr.REPO, "static", "index.html")
        if not os.path.exists(index):
            self.skipTest("static/index.html not in the repo yet")
        with open(index, "rb") as f:
            want = f.read()
        with self.http() as c:
            c.request("GET", "/")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, want)


if __name__ == "__main__":
    wsr.main()
