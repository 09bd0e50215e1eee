"""Resource limits of the worker, and how its end is told apart: its own doing or the outside's.

rlimits() turns grading.yml's ``limits`` into setrlimit(2) calls: CPU seconds, memory (address
space, or data size on a machine with an NVIDIA device), file size, processes (counted per uid:
each worker has a uid of its own, uids.py), open files, and no core files.

SELF_INFLICTED names the signals a worker can die of by its own code. In its own PID namespace
the worker is PID 1, which no process of that namespace can kill with any other signal, so a
death by another signal (SIGKILL, SIGTERM...) came from outside: an operator, the OOM killer,
the machine. Such a loss is not scored: the test is graded again (sandbox/connection.py,
runner.py).
"""
from __future__ import annotations

import os
import signal

try:
    import resource
except ImportError:  # not POSIX: no limits
    resource = None

# Signals that the kernel raises in a process for what its own code did: a bad memory access,
# an illegal instruction, the CPU or file size limit; abort() ends as SIGSEGV or SIGABRT.
SELF_INFLICTED = frozenset(
    getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGSYS",
                                       "SIGTRAP", "SIGXCPU", "SIGXFSZ") if hasattr(signal, name))


def rlimits(limits) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for each limit of grading.yml."""
    mb = 1024 * 1024
    # CUDA reserves tens of GB of address space it never touches, so on a machine with an
    # NVIDIA device the memory limit counts data (heap and writable mappings) instead.
    memory = resource.RLIMIT_DATA if os.path.exists("/dev/nvidiactl") else resource.RLIMIT_AS
    cpu = int(limits.cpu_seconds)
    return [
        # The hard CPU limit a second above the soft one: the kernel first sends SIGXCPU, so that
        # the CPU limit is told apart from a SIGKILL from outside (which is retried, not scored).
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        *[(which, value, value) for which, value in (
            (memory, int(limits.memory_mb) * mb),
            (resource.RLIMIT_FSIZE, int(limits.file_size_mb) * mb),
            (resource.RLIMIT_NPROC, int(limits.processes)),
            (resource.RLIMIT_NOFILE, int(limits.open_files)),
            (resource.RLIMIT_CORE, 0),
        )],
    ]
