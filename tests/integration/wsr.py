"""Shared helpers for the wsrelay integration tests.

Run each test file with Debian's python3 (`/usr/bin/python3 tests/integration/test_x.py`). Environment:
  WSRELAY  path of the server binary (default: build/plain/wsrelay in the repo)
  SAN      sanitizer variant the binary was built with, or empty; sanitized builds are slower, so time bounds and
           the largest payloads scale with it.

Everything here talks to 127.0.0.1 or ::1 only, every socket has a timeout, and Server only ever signals the process
it started (by PID).
"""
import asyncio
import base64
import hashlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("WSRELAY") or os.path.join(REPO, "build", "plain", "wsrelay")
SAN = os.environ.get("SAN", "")
IO_BACKEND = os.environ.get("WSR_IO", "")  # every server of the run uses this --io backend (make test runs both)
SLOW = 3.0 if SAN else 1.0          # time-bound multiplier for sanitizer builds
IO_TIMEOUT = 10.0 * SLOW            # default bound for any single socket wait
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_START_RE = re.compile(rb"listening on (\[[^\]]+\]|[^\s:]+):(\d+)")


def accept_for(key):
    """Sec-WebSocket-Accept expected for a Sec-WebSocket-Key (str or bytes)."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def mask_bytes(data, key):
    """XOR data with the 4-byte key (RFC 6455 section 5.3), fast for large payloads."""
    n = len(data)
    if n == 0:
        return b""
    reps = key * ((n + 3) // 4)
    x = int.from_bytes(data, "big") ^ int.from_bytes(reps[:n], "big")
    return x.to_bytes(n, "big")


def require_binary(path=None):
    """Skip when no WSRELAY was given and the default build is absent; fail when the given WSRELAY is missing."""
    path = path or BIN
    if not os.access(path, os.X_OK):
        if os.environ.get("WSRELAY"):
            raise AssertionError("WSRELAY=%s is not an executable" % path)
        raise unittest.SkipTest("server binary not built: %s" % path)


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------------------------------

def _die_with_parent():
    """In the child before exec: SIGKILL it if this test process dies (e.g. killed by the runner's timeout), so no
    server outlives its test."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Server:
    """One wsrelay process started with `flags` on --port 0. Use as a context manager or call start()/stop().

    stdout and stderr go to temp files (nothing can block on a full pipe); the port comes from the start-up line."""

    def __init__(self, *flags, host="127.0.0.1", binary=None, start_timeout=None, io=None, expect_backend=None,
                 preexec=None):
        """io: the --io value to pass instead of the run's WSR_IO ("" passes none); expect_backend: the backend the
        start-up line must name (default: the --io asked for); preexec: also run in the child before exec."""
        self.flags = [str(f) for f in flags]
        self.host = host
        self.io = IO_BACKEND if io is None else io
        self.expect_backend = self.io if expect_backend is None else expect_backend
        self.preexec = preexec
        self.binary = binary or BIN
        self.start_timeout = start_timeout or 10.0 * SLOW
        self.proc = None
        self.port = None
        self.banner = None
        self._out = None
        self._err = None

    def start(self):
        require_binary(self.binary)
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        argv = [self.binary, "--host", self.host, "--port", "0"] + self.flags
        if self.io:
            argv += ["--io", self.io]

        def child_setup():
            _die_with_parent()
            if self.preexec:
                self.preexec()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, cwd=REPO,
                                     preexec_fn=child_setup)
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._out.seek(0)
            data = self._out.read()
            if b"\n" in data:
                line = data.split(b"\n", 1)[0]
                m = _START_RE.search(line)
                if not m:
                    self.kill()
                    raise AssertionError("unexpected start-up line %r; stderr: %s" % (line, self.stderr()))
                self.banner = line.decode(errors="replace")
                if self.expect_backend and ("backend=%s" % self.expect_backend) not in self.banner:
                    self.kill()
                    raise AssertionError("want backend=%s (--io %r), server runs %r"
                                         % (self.expect_backend, self.io, self.banner))
                self.port = int(m.group(2))
                return self
            if self.proc.poll() is not None:
                raise AssertionError("server exited %s at start-up (argv %r); stderr: %s"
                                     % (self.proc.returncode, argv, self.stderr()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("no start-up line within %.0fs; stderr: %s" % (self.start_timeout, self.stderr()))
            time.sleep(0.01)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self, limit=4000):
        if self._err is None:
            return ""
        self._err.seek(0)
        return self._err.read()[-limit:].decode(errors="replace")

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Exit status, or None if the process is still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=None):
        """SIGTERM, wait; returns the exit status (kills and returns None if it does not exit in time)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            rc = self.wait(timeout or 15.0 * SLOW)
            if rc is None:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close_files(self):
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        self._out = self._err = None

    def url(self, path):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "ws://%s:%d%s" % (h, self.port, path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
        self.close_files()


class ServerTestCase(unittest.TestCase):
    """A test class sharing one server (flags in FLAGS). After every test the server must still be running; at the end
    of the class SIGTERM must make it exit 0 (a sanitizer report or a crash fails the class)."""
    FLAGS = ()
    HOST = "127.0.0.1"

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.extra_flags(), *cls.FLAGS, host=cls.HOST).start()

    @classmethod
    def extra_flags(cls):
        return ()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        try:
            rc = srv.stop()
            if rc != 0:
                raise AssertionError("server exit status %r after SIGTERM (want 0); stderr:\n%s" % (rc, srv.stderr()))
        finally:
            srv.kill()
            srv.close_files()

    def tearDown(self):
        if not self.server.alive():
            self.fail("server died during the test (status %r); stderr:\n%s"
                      % (self.server.proc.returncode, self.server.stderr()))

    @property
    def port(self):
        return self.server.port

    def raw(self, path="/echo", **kw):
        return RawWS(self.port, path, host=self.HOST, **kw)

    def http(self):
        return HttpConn(self.port, host=self.HOST)


# --------------------------------------------------------------------------------------------------------------------
# Plain sockets and HTTP
# --------------------------------------------------------------------------------------------------------------------

def connect(port, host="127.0.0.1", timeout=None, rcvbuf=None):
    """A connected TCP socket. rcvbuf sets SO_RCVBUF before connect, so the window is small from the SYN on
    (shrinking it on a connected socket can leave the peer in TCP's zero-window probe back-off for many seconds)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout or IO_TIMEOUT)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset_close(sock):
    """Close with SO_LINGER 0, so the peer gets a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Closed(Exception):
    """The peer closed (EOF or reset) before the expected bytes arrived."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers   # list of (lower-case name, value) in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_tokens(self, name):
        """Comma-separated header tokens, lower-cased, over every instance of the header."""
        out = []
        for k, v in self.headers:
            if k == name.lower():
                out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def __repr__(self):
        return "<Response %d %s %r body=%d bytes>" % (self.status, self.reason, self.headers, len(self.body))


class Conn:
    """A socket plus a receive buffer."""

    def __init__(self, port, host="127.0.0.1", timeout=None, sock=None):
        self.sock = sock or connect(port, host, timeout)
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, want=65536):
        try:
            chunk = self.sock.recv(min(max(want, 65536), 1 << 20))
        except ConnectionResetError:
            raise Closed("connection reset by peer")
        if not chunk:
            raise Closed("EOF")
        self.buf += chunk

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill(n - len(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, marker, limit=1 << 20):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes" % (marker, limit))
            self._fill()

    def at_eof(self, timeout=None):
        """True when the peer closes (EOF or reset) within timeout after any buffered bytes; bytes that arrive
        meanwhile are kept in self.buf. False on timeout."""
        self.sock.settimeout(timeout or IO_TIMEOUT)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except ConnectionResetError:
                    return True
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HttpConn(Conn):
    def request(self, method, path, headers=None, version="HTTP/1.1", body=b""):
        self.send(build_request(method, path, headers, version, body))

    def read_response(self, head_request=False):
        raw = self.read_until(b"\r\n\r\n", limit=1 << 16)
        return parse_head(raw, self, head_request)


def build_request(method, path, headers=None, version="HTTP/1.1", body=b"", host="127.0.0.1"):
    hs = [("Host", host)]
    if headers:
        hs += list(headers.items()) if isinstance(headers, dict) else list(headers)
    lines = ["%s %s %s" % (method, path, version)] + ["%s: %s" % kv for kv in hs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(raw, conn=None, head_request=False, status_only=False):
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        if ":" not in ln:
            raise AssertionError("bad header line %r" % ln)
        k, v = ln.split(":", 1)
        headers.append((k.strip().lower(), v.strip()))
    resp = Response(m.group(1), int(m.group(2)), m.group(3) or "", headers, b"", raw)
    if conn is not None and not head_request and resp.status not in (101, 204, 304):
        cl = resp.header("content-length")
        if cl is not None:
            resp.body = conn.read_exact(int(cl))
        elif (resp.header("connection") or "").lower() == "close":
            conn.at_eof()
            resp.body = bytes(conn.buf)
            conn.buf.clear()
    return resp


def http_exchange(port, data, host="127.0.0.1", head_request=False):
    """Send raw bytes, read one response. Returns (Response, conn) so callers can check what follows."""
    c = HttpConn(port, host)
    c.send(data)
    return c.read_response(head_request), c


# --------------------------------------------------------------------------------------------------------------------
# A raw WebSocket client: sends frames of any shape, including invalid ones
# --------------------------------------------------------------------------------------------------------------------

class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def close_code(self):
        if self.opcode != OP_CLOSE:
            raise AssertionError("not a close frame: %r" % self)
        if len(self.payload) == 0:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return "<Frame fin=%d rsv=%d op=%#x len=%d %r>" % (self.fin, self.rsv, self.opcode, len(self.payload), p)


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None, length=None, len_form=None):
    """Bytes of one client frame. length overrides the declared payload length; len_form forces the length encoding
    (7, 16 or 64 bits) even when it is not minimal."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    form = len_form or (7 if n <= 125 else 16 if n <= 0xFFFF else 64)
    if form == 7:
        head = struct.pack("!BB", b0, mbit | n)
    elif form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = key or b"\x00\x00\x00\x00"
    return head + key + mask_bytes(payload, key)


class RawWS(Conn):
    """WebSocket client over a plain socket. The handshake is checked strictly (101, accept value, Upgrade and
    Connection headers) unless handshake=False. Masking keys come from a seeded generator, so runs are repeatable."""

    def __init__(self, port, path="/echo", host="127.0.0.1", headers=None, handshake=True, seed=1, timeout=None,
                 rcvbuf=None):
        super().__init__(port, host, timeout, sock=connect(port, host, timeout, rcvbuf) if rcvbuf else None)
        self.rng = random.Random(seed)
        self.key = base64.b64encode(bytes(self.rng.getrandbits(8) for _ in range(16))).decode()
        self.path = path
        self.host = host
        self.extra = headers or {}
        self.response = None
        if handshake:
            self.handshake()

    def handshake_bytes(self, extra=b""):
        hs = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": self.key,
              "Sec-WebSocket-Version": "13"}
        hs.update(self.extra)
        hs = [(k, v) for k, v in hs.items() if v is not None]
        return build_request("GET", self.path, hs) + extra

    def handshake(self, extra=b""):
        """Send the upgrade (plus extra bytes in the same write) and check the 101."""
        self.send(self.handshake_bytes(extra))
        raw = self.read_until(b"\r\n\r\n", limit=1 << 16)
        r = self.response = parse_head(raw)
        if r.status != 101:
            raise AssertionError("handshake answered %d, not 101: %r" % (r.status, raw))
        if r.header("sec-websocket-accept") != accept_for(self.key):
            raise AssertionError("bad Sec-WebSocket-Accept %r for key %r (want %r)"
                                 % (r.header("sec-websocket-accept"), self.key, accept_for(self.key)))
        if "websocket" not in r.header_tokens("upgrade"):
            raise AssertionError("101 without Upgrade: websocket: %r" % raw)
        if "upgrade" not in r.header_tokens("connection"):
            raise AssertionError("101 without Connection: Upgrade: %r" % raw)
        return r

    def new_key(self):
        return bytes(self.rng.getrandbits(8) for _ in range(4))

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, length=None, len_form=None):
        if isinstance(payload, str):
            payload = payload.encode()
        self.send(encode_frame(opcode, payload, fin, rsv, mask, self.new_key(), length, len_form))

    def frame_bytes(self, opcode, payload=b"", fin=True, rsv=0):
        return encode_frame(opcode, payload, fin, rsv, True, self.new_key())

    def send_fragments(self, opcode, parts):
        """One message as len(parts) frames (first carries opcode, the rest continuation), sent in one write."""
        out = []
        for i, part in enumerate(parts):
            out.append(self.frame_bytes(opcode if i == 0 else OP_CONT, part, fin=(i == len(parts) - 1)))
        self.send(b"".join(out))

    def send_in_background(self, data):
        """sendall(data) on a thread (for payloads larger than the socket buffers, so the caller can read the reply
        while the request is still going out). Returns the thread; join_sender() re-raises its error."""
        import threading
        self._send_err = None

        def run():
            try:
                self.sock.sendall(data)
            except OSError as e:
                self._send_err = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._sender = t
        return t

    def join_sender(self):
        self._sender.join(IO_TIMEOUT)
        if self._sender.is_alive():
            raise AssertionError("sending did not finish in time")
        if self._send_err is not None:
            raise self._send_err

    def send_close(self, code=None, reason=b""):
        payload = b"" if code is None else struct.pack("!H", code) + reason
        self.send_frame(OP_CLOSE, payload)

    def recv_frame(self):
        b0, b1 = self.read_exact(2)
        if b1 & 0x80:
            raise AssertionError("server sent a masked frame (RFC 6455 section 5.1)")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8))[0]
        payload = self.read_exact(n) if n else b""
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)

    def recv_message(self, skip_control=True):
        """(opcode, payload) of the next data message, reassembled. Pings are answered; pongs are skipped. A close
        frame raises AssertionError naming its code."""
        op, parts = None, []
        while True:
            f = self.recv_frame()
            if f.rsv:
                raise AssertionError("server frame with RSV bits: %r" % f)
            if f.opcode == OP_PING and skip_control:
                self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG and skip_control:
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError("got close %r while waiting for a message" % (f.close_code(),))
            if op is None:
                if f.opcode not in (OP_TEXT, OP_BIN):
                    raise AssertionError("message starts with %r" % f)
                op = f.opcode
            elif f.opcode != OP_CONT:
                raise AssertionError("expected a continuation, got %r" % f)
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def echo(self, payload, opcode=OP_BIN):
        self.send_frame(opcode, payload)
        return self.recv_message()

    def expect_close(self, want_code, reply=True, eof_timeout=None, wait_eof=True):
        """Read frames until a close; check its code (want_code None = empty close payload, or a collection of
        acceptable codes). Data frames before it are skipped. Then reply with a close (if reply) and require the
        server to close the TCP connection. Returns the close Frame."""
        while True:
            try:
                f = self.recv_frame()
            except Closed as e:
                raise AssertionError("connection ended (%s) without a close frame (want %r)" % (e, want_code))
            if f.opcode == OP_CLOSE:
                break
        code = f.close_code()
        ok = (code in want_code) if isinstance(want_code, (tuple, list, set, frozenset)) else (code == want_code)
        if not ok:
            raise AssertionError("close code %r (reason %r), want %r" % (code, f.payload[2:], want_code))
        if reply:
            try:
                self.send_frame(OP_CLOSE, f.payload[:2])
            except OSError:
                pass
        if wait_eof and not self.at_eof(eof_timeout):
            raise AssertionError("server did not close TCP after the close handshake")
        return f

    def close_cleanly(self):
        """Client-initiated close: send 1000, require the 1000 echo, then drop the socket without waiting for the
        server's FIN (test_echo checks that separately, so a slow FIN cannot slow down every test)."""
        try:
            self.send_close(1000)
            self.expect_close(1000, reply=False, wait_eof=False)
        finally:
            self.close()


# --------------------------------------------------------------------------------------------------------------------
# The independent client: Debian's python3-websockets (10.x: asyncio API, wrapped to run synchronously)
# --------------------------------------------------------------------------------------------------------------------

def ws_run(coro_fn, timeout=None):
    """Run an async function with a hard time bound."""
    async def bounded():
        return await asyncio.wait_for(coro_fn(), timeout or 60.0 * SLOW)
    return asyncio.run(bounded())


def ws_exchange(url, messages, **kw):
    """Connect with python3-websockets, send each message (str or bytes, or a list of parts = one fragmented message)
    and return the replies in order."""
    import websockets
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 10 * SLOW)
    kw.setdefault("close_timeout", 2 * SLOW)   # how long the client waits for the server's FIN after the close
    kw.setdefault("compression", None)

    async def go():
        out = []
        async with websockets.connect(url, **kw) as ws:
            for m in messages:
                await ws.send(m)
                out.append(await ws.recv())
        return out
    return ws_run(go)


def main():
    unittest.main(verbosity=2)
