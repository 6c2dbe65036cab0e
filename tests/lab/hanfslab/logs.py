"""The clients' logs as typed records, parsed in one place: what
node/writer.py, node/prober.py and node/newlock.py write (each one's
docstring gives its format).

The driver reads these logs while the clients write them, and a client may
be killed mid-line: a last line without its newline is torn and skipped (it
is read whole at the next poll, if ever written), and so is any line that
does not parse (garbage). A missing log reads as empty.
"""
import os
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WriterOk:
    """OK <seq> <t_start> <t_end>: record seq written and fsynced."""
    seq: int
    t_start: float
    t_end: float


@dataclass(frozen=True)
class WriterErr:
    """ERR <seq> <t_start> <t_end> <errno> <ERRNAME>: the write or fsync failed."""
    seq: int
    t_start: float
    t_end: float
    errno: int
    name: str


@dataclass
class WriterLog:
    """A writer's log: its acknowledged writes, its failed ones, and whether
    it got all its locks and began writing (READY)."""
    oks: list = field(default_factory=list)
    errs: list = field(default_factory=list)
    ready: bool = False


@dataclass(frozen=True)
class ProbeAttempt:
    """<t_start> <t_end> <file> HELD|ACQUIRED|ERR_<ERRNAME>: one try at a lock
    another client holds."""
    t_start: float
    t_end: float
    file: str
    result: str

    @property
    def held(self):
        return self.result == "HELD"

    @property
    def acquired(self):
        return self.result == "ACQUIRED"

    @property
    def error(self):
        """The errno name of a failed attempt, else None."""
        return _error(self.result)


@dataclass(frozen=True)
class NewLockAttempt:
    """<t_start> <t_end> GRANTED|ERR_<ERRNAME>: one new lock, taken and released."""
    t_start: float
    t_end: float
    result: str

    @property
    def granted(self):
        return self.result == "GRANTED"

    @property
    def error(self):
        return _error(self.result)


def _error(result):
    return result[4:] if result.startswith("ERR_") else None


# ERR_ and errno's name for the error (E2BIG, EIO, ...), or ? where it has none
_ERR = re.compile(r"ERR_(E[A-Z0-9]+|\?)")


def _is_result(word, ok_words):
    return word in ok_words or _ERR.fullmatch(word) is not None


def _whole_lines(path):
    """The complete lines of a log, split into words (a torn last line left out)."""
    if not os.path.exists(path):
        return
    with open(path, errors="replace") as f:
        for line in f:
            if line.endswith("\n"):
                yield line.split()


def _writer_record(p):
    if p == ["READY"]:
        return "READY"
    if len(p) == 4 and p[0] == "OK":
        return WriterOk(int(p[1]), float(p[2]), float(p[3]))
    if len(p) == 6 and p[0] == "ERR":
        return WriterErr(int(p[1]), float(p[2]), float(p[3]), int(p[4]), p[5])
    return None  # START, LOCKED, END: not used by the analysis; or garbage


def read_writer(path):
    log = WriterLog()
    for p in _whole_lines(path):
        try:
            r = _writer_record(p)
        except ValueError:
            continue
        if r == "READY":
            log.ready = True
        elif isinstance(r, WriterOk):
            log.oks.append(r)
        elif isinstance(r, WriterErr):
            log.errs.append(r)
    return log


def read_prober(path):
    rows = []
    for p in _whole_lines(path):
        if len(p) != 4 or not _is_result(p[3], ("HELD", "ACQUIRED")):
            continue
        try:
            rows.append(ProbeAttempt(float(p[0]), float(p[1]), p[2], p[3]))
        except ValueError:
            continue
    return rows


def read_newlock(path):
    rows = []
    for p in _whole_lines(path):
        if len(p) != 3 or not _is_result(p[2], ("GRANTED",)):
            continue
        try:
            rows.append(NewLockAttempt(float(p[0]), float(p[1]), p[2]))
        except ValueError:
            continue
    return rows
