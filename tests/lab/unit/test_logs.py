"""Offline tests of the clients' log parsing (hanfslab/logs.py): well-formed
logs, a torn last line, garbage, and the formats node/writer.py, prober.py
and newlock.py really write (each run for a moment on a local directory)."""
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from hanfslab import analysis as A
from hanfslab import logs as L

NODE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")


def log_file(text):
    f = tempfile.NamedTemporaryFile("w", delete=False, suffix=".log")
    f.write(text)
    f.close()
    return f.name


class Parsed:
    """A log with `text`, parsed by `read`; the file is removed afterwards."""

    def __init__(self, read, text):
        self.read, self.text = read, text

    def __enter__(self):
        self.path = log_file(self.text)
        return self.read(self.path)

    def __exit__(self, *a):
        os.unlink(self.path)


WRITER = ("START 4242 99.000\n"
          "LOCKED t.lock0 99.001 99.002\n"
          "LOCKED t.data 99.003 99.004\n"
          "READY\n"
          "OK 1 99.100 99.110\n"
          "ERR 2 99.200 99.900 5 EIO\n"
          "OK 3 100.000 100.010\n"
          "END 3 100.100\n")


class Writer(unittest.TestCase):
    def test_well_formed(self):
        with Parsed(L.read_writer, WRITER) as w:
            self.assertTrue(w.ready)
            self.assertEqual(w.oks, [L.WriterOk(1, 99.1, 99.11), L.WriterOk(3, 100.0, 100.01)])
            self.assertEqual(w.errs, [L.WriterErr(2, 99.2, 99.9, 5, "EIO")])

    def test_torn_last_line_is_left_out(self):
        with Parsed(L.read_writer, "READY\nOK 1 99.100 99.110\nOK 2 99.200 99.2") as w:
            self.assertEqual([o.seq for o in w.oks], [1])

    def test_garbage_is_skipped(self):
        text = ("READ\nOK one 99.1 99.2\nOK 1 99.100\nERR 2 99.2 99.3 EIO\nERR 2 x 99.3 5 EIO\n"
                "\x00\x01 binary\n\nOK 3 100.000 100.010\n")
        with Parsed(L.read_writer, text) as w:
            self.assertFalse(w.ready)
            self.assertEqual(w.oks, [L.WriterOk(3, 100.0, 100.01)])
            self.assertEqual(w.errs, [])

    def test_missing_log_is_empty(self):
        w = L.read_writer("/nonexistent/writer.log")
        self.assertEqual((w.oks, w.errs, w.ready), ([], [], False))

    def test_the_window_ignores_garbage_and_a_torn_line(self):
        clean = log_file(WRITER)
        dirty = log_file(WRITER.replace("OK 3", "garbage here\nOK 3") + "OK 4 100.2")
        try:
            self.assertEqual(A.writer_window(clean, 99.0, 101.0), A.writer_window(dirty, 99.0, 101.0))
            self.assertEqual(A.writer_window(clean, 99.0, 101.0)["error_kinds"], ["EIO"])
        finally:
            os.unlink(clean)
            os.unlink(dirty)


class Prober(unittest.TestCase):
    def test_well_formed(self):
        text = ("100.000 100.010 w.lock0 HELD\n"
                "101.000 101.010 w.data ACQUIRED\n"
                "102.000 102.500 w.lock0 ERR_ESTALE\n"
                "103.000 103.010 w.lock0 ERR_?\n")
        with Parsed(L.read_prober, text) as rows:
            self.assertEqual(rows[0], L.ProbeAttempt(100.0, 100.01, "w.lock0", "HELD"))
            self.assertEqual([(r.held, r.acquired, r.error) for r in rows],
                             [(True, False, None), (False, True, None), (False, False, "ESTALE"),
                              (False, False, "?")])

    def test_torn_last_line_is_left_out(self):
        with Parsed(L.read_prober, "100.000 100.010 w.lock0 HELD\n101.000 101.010 w.lock0 HEL") as rows:
            self.assertEqual(len(rows), 1)

    def test_garbage_is_skipped(self):
        text = ("100.000 100.010 w.lock0 MAYBE\n"
                "x 100.010 w.lock0 HELD\n"
                "100.000 100.010 HELD\n"
                "100.000 100.010 w.lock0 ERR_\n"
                "100.000 100.010 w.lock0 HELD extra\n"
                "101.000 101.010 w.data HELD\n")
        with Parsed(L.read_prober, text) as rows:
            self.assertEqual(rows, [L.ProbeAttempt(101.0, 101.01, "w.data", "HELD")])


class NewLock(unittest.TestCase):
    def test_well_formed_torn_and_garbage(self):
        text = "95.000 95.010 GRANTED\n96.000 96.5 ERR_EIO\nnot a line\n97.0 x GRANTED\n98.000 98"
        with Parsed(L.read_newlock, text) as rows:
            self.assertEqual(rows, [L.NewLockAttempt(95.0, 95.01, "GRANTED"),
                                    L.NewLockAttempt(96.0, 96.5, "ERR_EIO")])
            self.assertEqual([(r.granted, r.error) for r in rows], [(True, None), (False, "EIO")])


def run_for_a_moment(args, log, until):
    """Run a node script until `until(log)` holds (at most 10 s), then SIGTERM it."""
    p = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 10
        while not until(log) and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err


class TheNodeScriptsFormats(unittest.TestCase):
    """What the clients write on a local file system parses into records."""

    def setUp(self):
        self.d = tempfile.TemporaryDirectory()
        self.addCleanup(self.d.cleanup)

    def path(self, name):
        return os.path.join(self.d.name, name)

    def test_writer(self):
        log = self.path("writer.log")
        rc, err = run_for_a_moment([f"{NODE}/writer.py", "t", self.d.name, log, "2"], log,
                                   lambda p: len(L.read_writer(p).oks) >= 3)
        self.assertEqual(rc, 0, err)
        w = L.read_writer(log)
        self.assertTrue(w.ready)
        self.assertEqual(w.errs, [])
        self.assertEqual([o.seq for o in w.oks], list(range(1, len(w.oks) + 1)))
        self.assertTrue(all(o.t_start <= o.t_end for o in w.oks))
        with open(log) as f:
            self.assertTrue(f.read().endswith("\n"))

    def test_prober_and_newlock(self):
        held, free = self.path("w.lock0"), self.path("w.data")
        for p in (held, free):
            open(p, "w").close()
        with open(held, "r+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)  # this process holds it; the prober is another
            log = self.path("prober.log")
            rc, err = run_for_a_moment([f"{NODE}/prober.py", log, held, free], log,
                                       lambda p: len(L.read_prober(p)) >= 2)
        self.assertEqual(rc, 0, err)
        rows = L.read_prober(log)
        self.assertEqual({(r.file, r.result) for r in rows}, {("w.lock0", "HELD"), ("w.data", "ACQUIRED")})
        log = self.path("newlock.log")
        rc, err = run_for_a_moment([f"{NODE}/newlock.py", log, self.path("nl")], log,
                                   lambda p: len(L.read_newlock(p)) >= 1)
        self.assertEqual(rc, 0, err)
        self.assertTrue(L.read_newlock(log)[0].granted)


if __name__ == "__main__":
    unittest.main()


class AgentActions(unittest.TestCase):
    def test_a_failed_action_with_its_reason_is_counted(self):
        from hanfslab import cluster
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "pacemaker-1.log"), "w") as f:
                f.write(
                    "Dec 02 13:57:13.535 nodea pacemaker-execd     [813] (log_finished) \tinfo: nfs-grace stop "
                    "(call 61, PID 1493) exited with status 1 (timed out after 60.0s: stopping nfsd (writing 0 to "
                    "threads) (hung storage, kernel or name service?)) (execution time 59.894s)\n"
                    "Dec 02 13:55:47.494 nodea pacemaker-execd     [813] (log_finished) \tinfo: nfs-data stop "
                    "(call 55, PID 1436) exited with status 0 (execution time 1.697s after being queued 1ms)\n")
            t0 = time.mktime(time.strptime("2026 Dec 02 13:50:00", "%Y %b %d %H:%M:%S"))
            acts = cluster.agent_actions([d], t0, t0 + 3600)
        self.assertEqual([(a["resource"], a["rc"], a["seconds"]) for a in acts],
                         [("nfs-data", 0, 1.697), ("nfs-grace", 1, 59.894)])
