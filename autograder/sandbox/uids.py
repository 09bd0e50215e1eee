"""A pool of unprivileged uids: each running worker gets one of its own.

When the grader runs as root, every worker runs as a uid that no other worker uses at the same
time, so that a submission cannot signal, ptrace or read /proc of another submission's
processes, and the per-user process limit (RLIMIT_NPROC) counts one submission's processes only.

The pool is a range of numeric uids (and gids of the same number), none of which may be an
account in the user database. The default is 70000-70063: above the 16-bit range that system
and human accounts use and below 100000, where /etc/subuid ranges for containers start by
default. Set ``DEEPGRADE_UIDS=FIRST-LAST`` to choose another range (at least as many uids as
workers run at once on the machine: one per concurrent grade).

A slot is taken with an exclusive flock(2) on ``/run/deepgrade-uids/<uid>.lock`` (or, where
/run cannot be written, ``/tmp/deepgrade-uids-0``): the lock is shared by every grader on the
machine, whatever its TMPDIR, and the kernel releases it when the process that holds it dies,
even by SIGKILL. A uid under which any process still runs is skipped.
"""
from __future__ import annotations

import fcntl
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "DEEPGRADE_UIDS"
DEFAULT_RANGE = (70000, 70063)
LOCK_DIRS = (Path("/run/deepgrade-uids"), Path("/tmp/deepgrade-uids-0"))


class UidPoolError(Exception):
    """The pool is misconfigured (a bad DEEPGRADE_UIDS) or exhausted."""


@dataclass
class UidSlot:
    """A uid (and gid) held for one worker; release() gives it back."""

    uid: int
    gid: int
    _fd: int | None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def pool_range(env: dict[str, str] | None = None) -> range:
    """The uids of the pool (DEEPGRADE_UIDS or the default). Raises UidPoolError for a bad
    setting, naming it."""
    text = (env if env is not None else os.environ).get(ENV, "").strip()
    if not text:
        return range(DEFAULT_RANGE[0], DEFAULT_RANGE[1] + 1)
    try:
        first_text, last_text = text.split("-")
        first, last = int(first_text), int(last_text)
    except ValueError:
        raise UidPoolError(f"{ENV}={text!r}: expected FIRST-LAST, for example 70000-70063") from None
    if not 1000 <= first <= last < 2**31 - 1:
        raise UidPoolError(f"{ENV}={text!r}: expected 1000 <= FIRST <= LAST < 2147483647 "
                           "(uids of unprivileged users, not system accounts)")
    return range(first, last + 1)


def _lock_dir() -> Path:
    """The folder of the lock files: root's own, so no one else can take or fake a slot."""
    for d in LOCK_DIRS:
        try:
            d.mkdir(mode=0o700, exist_ok=True)
            st = d.lstat()
        except OSError:
            continue
        if st.st_uid == os.geteuid() and not st.st_mode & 0o022 and d.is_dir() and not d.is_symlink():
            return d
    raise UidPoolError(f"no folder for the uid pool's locks: {' and '.join(map(str, LOCK_DIRS))} "
                       "cannot be created as root-owned folders")


def _busy_uids() -> set[int]:
    """The uids under which some process runs now."""
    busy = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                busy.add(os.stat(f"/proc/{entry}").st_uid)
            except OSError:
                pass
    return busy


def _is_account(uid: int) -> bool:
    import pwd  # noqa: PLC0415 - POSIX only; the pool is used only as root on Linux

    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def acquire(timeout: float = 30.0, uids: range | None = None) -> UidSlot:
    """Take a free uid of the pool, waiting up to `timeout` seconds for one.

    Returns UidSlot (release it when the worker has stopped). Raises UidPoolError when the
    range is misconfigured or every uid stays taken.
    """
    uids = pool_range() if uids is None else uids
    folder = _lock_dir()
    deadline = time.monotonic() + timeout
    while True:
        # A uid under which processes still run (left by a grader that died) is not reused:
        # they could reach the next worker that runs as it.
        busy = _busy_uids()
        start = random.randrange(len(uids))  # concurrent graders try different uids first
        for k in range(len(uids)):
            uid = uids[(start + k) % len(uids)]
            if uid in busy or _is_account(uid):
                continue
            fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return UidSlot(uid, uid, fd)
        if time.monotonic() >= deadline:
            raise UidPoolError(
                f"no free uid in {ENV}={uids[0]}-{uids[-1]} ({len(uids)} uids): every one is in use "
                f"by a running worker; widen the range (one uid per submission graded at once)")
        time.sleep(0.05)
