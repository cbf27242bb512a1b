"""Command line: bad flags and values exit 2 with one line on stderr naming the flag; --help and --version exit 0."""
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402


def run(*args):
    wsr.require_binary()
    # --port 0 and 127.0.0.1 so that a flag wrongly accepted cannot bind a public port; the timeout kills a server
    # that started instead of refusing.
    p = subprocess.run([wsr.BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=10 * wsr.SLOW)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Cli(unittest.TestCase):
    BAD = [
        (["--bogus"], "--bogus"),
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--port", "-1"], "--port"),
        (["--port"], "--port"),                          # missing value
        (["--threads", "x"], "--threads"),
        (["--threads", "0"], "--threads"),
        (["--max-message", "12Q"], "--max-message"),
        (["--max-message", ""], "--max-message"),
        (["--max-frame", "-5"], "--max-frame"),
        (["--max-connections", "many"], "--max-connections"),
        (["--handshake-timeout", "soon"], "--handshake-timeout"),
        (["--idle-timeout", "1x"], "--idle-timeout"),
        (["--ping-interval", "-1"], "--ping-interval"),
        (["--close-timeout", "abc"], "--close-timeout"),
        (["--log-level", "loud"], "--log-level"),
        (["--host", "not an address"], "--host"),
    ]

    def test_bad_flags(self):
        for args, flag in self.BAD:
            with self.subTest(args=args):
                rc, out, err = run("--host", "127.0.0.1", "--port", "0", *args) if args[0] != "--host" else \
                    run("--port", "0", *args)
                self.assertEqual(rc, 2, "exit %r, stderr %r" % (rc, err))
                lines = err.splitlines()
                self.assertEqual(len(lines), 1, "stderr should be one line: %r" % err)
                self.assertIn(flag, lines[0])
                self.assertNotIn("listening", out)

    def test_help(self):
        rc, out, err = run("--help")
        self.assertEqual(rc, 0, err)
        for flag in ("--port", "--host", "--threads", "--max-message", "--idle-timeout", "--ping-interval"):
            self.assertIn(flag, out + err)

    def test_version(self):
        rc, out, err = run("--version")
        self.assertEqual(rc, 0, err)
        self.assertIn("0.1.0", out)

    def test_good_values_accepted(self):
        # Suffixes and decimal/ms durations from the spec start a server (stopped right after).
        with wsr.Server("--threads", "1", "--max-message", "64K", "--max-frame", "1M", "--handshake-timeout", "0.5",
                        "--close-timeout", "500ms", "--idle-timeout", "0", "--ping-interval", "0",
                        "--log-level", "error") as srv:
            self.assertIn("threads=1", srv.banner)
            self.assertEqual(srv.stop(), 0, srv.stderr())


if __name__ == "__main__":
    wsr.main()
