"""Where io_uring is refused (Docker's default seccomp profile answers its three system calls with EPERM; a kernel
built without it answers ENOSYS), wsrelay must say so in one line and serve everything with epoll.

The refusal is made here: the server is started under a seccomp filter (installed in the child before exec) that
fails io_uring_setup, io_uring_enter and io_uring_register with the chosen errno. A control run without the filter
must come up on io_uring, so the fallback seen under the filter is the filter's doing."""
import ctypes
import errno
import os
import platform
import struct
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsr  # noqa: E402

# x86_64 system call numbers and seccomp/BPF constants (linux/seccomp.h, linux/filter.h, linux/audit.h).
IO_URING_SYSCALLS = (425, 426, 427)  # io_uring_setup, io_uring_enter, io_uring_register
AUDIT_ARCH_X86_64 = 0xC000003E
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, SECCOMP_MODE_FILTER = 22, 38, 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def deny_io_uring(err, setup_entries=None):
    """A preexec hook: from here on, the io_uring system calls fail with err; everything else is allowed. With
    setup_entries, only io_uring_setup(setup_entries, ...) fails: a ring of that size (the workers' own rings) cannot
    be made while smaller ones (the start-up probe's) can."""
    def install():
        prog = [(BPF_LD_W_ABS, 0, 0, 4),                        # seccomp_data.arch
                (BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
                (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EINVAL),  # another ABI: refuse everything
                (BPF_LD_W_ABS, 0, 0, 0)]                        # seccomp_data.nr
        if setup_entries is None:
            for i, nr in enumerate(IO_URING_SYSCALLS):
                left = len(IO_URING_SYSCALLS) - i               # jump over the rest of the tests and the allow
                prog.append((BPF_JEQ_K, left, 0, nr))
        else:
            prog += [(BPF_JEQ_K, 0, 2, IO_URING_SYSCALLS[0]),   # not io_uring_setup: allow
                     (BPF_LD_W_ABS, 0, 0, 16),                  # low half of seccomp_data.args[0] (little-endian)
                     (BPF_JEQ_K, 1, 0, setup_entries)]
        prog += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
                 (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | err)]
        code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *ins) for ins in prog))
        fprog = _SockFprog(len(prog), ctypes.addressof(code))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0 or \
                libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
            os._exit(121)  # the test sees the exit status at start-up
    return install


def built_with_uring():
    with wsr.Server("--threads", "1", io="uring", expect_backend="") as srv:
        return "backend=uring" in srv.banner


@unittest.skipUnless(platform.machine() == "x86_64" and struct.calcsize("P") == 8,
                     "the seccomp filter here knows the x86_64 system call numbers only")
class IoUringRefused(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not built_with_uring():
            raise unittest.SkipTest("this wsrelay or kernel has no io_uring: nothing to fall back from")

    def echo_works(self, srv):
        ws = wsr.RawWS(srv.port, "/echo")
        try:
            for opcode, payload in ((wsr.OP_TEXT, b"hello"), (wsr.OP_BIN, bytes(range(256)) * 300)):
                ws.send_frame(opcode, payload)
                f = ws.recv_frame()
                self.assertEqual((f.opcode, f.payload), (opcode, payload))
        finally:
            ws.close()
        with wsr.HttpConn(srv.port) as h:
            h.request("GET", "/healthz")
            self.assertEqual(h.read_response().status, 200)

    def run_refused(self, err, io, level):
        srv = wsr.Server("--threads", "2", io=io, expect_backend="epoll", preexec=deny_io_uring(err))
        srv.start()
        try:
            self.echo_works(srv)
            self.assertEqual(srv.stop(), 0, srv.stderr())
            log = srv.stderr()
            lines = [ln for ln in log.splitlines() if "io_uring unavailable" in ln]
            self.assertEqual(len(lines), 1, log)
            self.assertIn(level, lines[0])
            self.assertIn(os.strerror(err), lines[0])
            self.assertIn("using epoll", lines[0])
        finally:
            srv.kill()
            srv.close_files()

    def test_control_without_the_filter_runs_io_uring(self):
        with wsr.Server("--threads", "2", io="uring", expect_backend="uring") as srv:
            self.echo_works(srv)

    def test_eperm_with_io_uring_asked_for_warns(self):
        self.run_refused(errno.EPERM, "uring", "warn")

    def test_enosys_by_default_informs(self):
        self.run_refused(errno.ENOSYS, "", "info")

    def test_workers_own_rings_refused(self):
        """The start-up probe (an 8-entry ring) works but each worker's own ring (1024 entries, IOU_SQ in
        net/io_uring.c) is refused: every worker logs it and serves with epoll, and the start-up line says epoll."""
        srv = wsr.Server("--threads", "2", io="uring", expect_backend="epoll",
                         preexec=deny_io_uring(errno.EPERM, setup_entries=1024))
        srv.start()
        try:
            self.echo_works(srv)
            self.assertEqual(srv.stop(), 0, srv.stderr())
            log = srv.stderr()
            lines = sorted(ln for ln in log.splitlines() if "io_uring setup failed" in ln)
            self.assertEqual(len(lines), 2, log)
            for i, ln in enumerate(lines):
                self.assertIn("worker %d:" % i, ln)
                self.assertIn(os.strerror(errno.EPERM), ln)
                self.assertIn("using epoll", ln)
            self.assertNotIn("io_uring unavailable", log)
        finally:
            srv.kill()
            srv.close_files()


if __name__ == "__main__":
    unittest.main()
