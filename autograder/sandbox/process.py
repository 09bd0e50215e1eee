"""Start the worker process inside the sandbox, stop it, and probe what this machine allows.

What a worker gets, each step applied where the OS allows it and recorded either way:

- ``limits``: CPU seconds, address space (data size on a machine with an NVIDIA device: CUDA
  reserves address space it never uses), file size, processes, open files (grading.yml
  ``limits``), and no core files;
- ``network``: a new, empty network namespace (no interface but a downed loopback), and a
  new IPC namespace (no System V shared memory with other workers);
- ``hidden_paths``: a new mount namespace whose root is a private, read-only tmpfs holding
  only the system's programs and libraries (/usr, /etc, /dev, ...), the interpreter and its
  packages (all read-only) and the worker's own scratch folder (writable). Everything else on
  the machine (the course folder with solutions and hidden tests, any other checkout of it,
  home folders, /tmp, data folders) does not exist for the worker. Folders inside packages
  that grading.yml names in ``hidden_package_data`` are covered by empty mounts. Where a
  private root cannot be built, the course folder, the temporary folders and the home folder
  are covered by empty tmpfs mounts instead (``private_root`` is then off);
- ``pid_namespace``: a new PID namespace whose first process (PID 1) is the worker, with a
  /proc of its own: the worker sees, signals and ptraces only its own processes. A process
  outside (a reaper, forked before the worker's exec) waits for it and ends the way it ended,
  so the grader reads the worker's exit status as usual; when the worker ends, the kernel
  kills every process left in its namespace;
- ``unprivileged_user``: when the grader runs as root, the worker runs as a uid of its own,
  taken from a pool (uids.py) for as long as it runs, so that neither signals, ptrace, /proc
  nor the per-user process limit connect two submissions graded at once;
- ``no_new_privs`` (and, when the worker is still root inside its own user namespace, an
  empty capability set) and a parent-death signal, so that the worker can't gain privileges
  and dies with the grader.

The scratch folder holds copies of only the files grading.yml lists (the runner collected
them); the worker's cwd is that folder, it runs ``python -I -B`` with a minimal environment,
and stop() ends it with every process it started.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import uids
from autograder.sandbox.limits import resource, rlimits
from autograder.sandbox.namespaces import (
    CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_NODEV, MS_NOEXEC, MS_NOSUID,
    WORLD_WRITABLE, RootPlan, apply_overlays, enter_private_root, interpreter_paths, libc, mount, overlay_plan,
    root_plan, unshare, write_file,
)

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 38, 24
PROTECTIONS = ("isolated_python", "limits", "network", "hidden_paths", "private_root", "pid_namespace",
               "unprivileged_user", "no_new_privs")
_SANDBOX = Path(__file__).resolve().parent
_PROJECT = _SANDBOX.parent.parent  # in a checkout: the folder that holds solutions/ and .git


@dataclass
class SandboxSpec:
    """How to start one worker. files: the graded files to copy into its scratch folder.
    limits: grading.yml's Limits. hide: folders to cover (the course root, the grader's work
    folder)."""

    files: list[Path]
    limits: object
    hide: list[Path] = field(default_factory=list)
    drop_user: bool = True  # when root: run as a uid of the pool (False only to recover from a failed start)
    cover: list[Path] = field(default_factory=list)  # folders inside kept paths to hide (package data)
    uid_timeout: float = 30.0  # how long to wait for a free uid of the pool


@dataclass
class Started:
    """A started worker: the process, its request/reply pipes, its scratch folder and which
    protections were applied (name -> bool)."""

    proc: subprocess.Popen
    req_fd: int
    rep_fd: int
    err_fd: int
    scratch: Path
    protections: dict[str, bool]
    root: Path | None = None  # the private root's mount point (empty outside the worker)
    slot: uids.UidSlot | None = None  # the worker's uid, held until stop()


def _unprivileged_slot(timeout: float = 30.0) -> uids.UidSlot | None:
    """A uid of the pool for one worker when the grader runs as root, else None (the worker
    then runs in a user namespace of its own, as the grader's uid)."""
    if os.geteuid() != 0:
        return None
    return uids.acquire(timeout)


def _reap_and_relay(child: int, cpu_seconds: float) -> None:
    """Runs in the process that forked the worker into its PID namespace: wait for the worker
    and end the way it ended (the same exit status, or the same signal), so that the grader
    reads the worker's status as its own child's. Never returns.

    A SIGKILL at the CPU limit (the kernel's, when student code ignores SIGXCPU) is reported
    as SIGXCPU: it is the limit, not a kill from outside."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        # Only the worker may hold the pipes: the grader must see their end when it dies.
        os.closerange(3, 1 << 16)
        while True:
            try:
                _, status, usage = os.wait4(child, 0)
                break
            except InterruptedError:
                continue
        if os.WIFEXITED(status):
            os._exit(os.WEXITSTATUS(status))
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else signal.SIGKILL
        if sig == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= cpu_seconds - 0.05:
            sig = signal.SIGXCPU
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig != signal.SIGKILL:  # (its handler cannot be set, nor need it be)
            try:
                signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
            except (OSError, ValueError):
                pass
        os.kill(os.getpid(), sig)
    finally:
        os._exit(255)


def _make_preexec(limits, plan, ids, report_fd: int, rplan: RootPlan | None = None):
    """The function that runs in the child between fork and exec. It must not import or
    raise: each step's outcome is written to report_fd as JSON and a failed step is skipped.
    ids: (uid, gid) to run as (the grader is root), or None (a user namespace instead)."""
    limits_ = rlimits(limits)
    cpu_seconds = float(limits.cpu_seconds)
    uid, gid = os.getuid(), os.getgid()

    def step(done: dict, name: str, fn) -> bool:
        try:
            fn()
            done[name] = True
        except BaseException:  # noqa: BLE001 - a step the OS refuses is recorded, not fatal
            done[name] = False
        return done[name]

    def preexec() -> None:
        done: dict[str, bool] = {"isolated_python": True}
        # This process dies with the grader; the worker, below, dies with this process.
        step({}, "pdeathsig", lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGKILL))

        def namespaces() -> None:
            if ids is not None:
                unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)
            else:
                unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)
                write_file("/proc/self/setgroups", "deny")
                write_file("/proc/self/gid_map", f"{gid} {gid} 1")
                write_file("/proc/self/uid_map", f"{uid} {uid} 1")

        if step(done, "network", namespaces):
            if step(done, "pid_namespace", lambda: unshare(CLONE_NEWPID)):
                # The next child is PID 1 of the new namespace: it goes on to become the worker;
                # this process stays outside, as its reaper.
                try:
                    child = os.fork()
                except OSError:
                    child, done["pid_namespace"] = 0, False
                if child != 0:
                    _reap_and_relay(child, cpu_seconds)
            own_proc = done["pid_namespace"]
            if rplan is not None and step(done, "private_root", lambda: enter_private_root(rplan, own_proc)):
                done["hidden_paths"] = True
            else:
                done["private_root"] = False
                if step(done, "hidden_paths", lambda: apply_overlays(plan)) and own_proc:
                    # /proc of the machine would still show every process: cover it with ours.
                    step(done, "pid_namespace", lambda: mount("proc", "/proc", "proc",
                                                               MS_NOSUID | MS_NODEV | MS_NOEXEC, None))
        else:
            done["hidden_paths"] = done["private_root"] = done["pid_namespace"] = False

        def set_limits() -> None:
            for which, soft_value, hard_value in limits_:
                soft, hard = resource.getrlimit(which)
                if hard != resource.RLIM_INFINITY:
                    soft_value, hard_value = min(soft_value, hard), min(hard_value, hard)
                resource.setrlimit(which, (soft_value, hard_value))

        step(done, "limits", set_limits)

        def drop() -> None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])

        if ids is not None:
            step(done, "unprivileged_user", drop)
        else:
            done["unprivileged_user"] = False
        def no_privileges() -> None:
            if os.getuid() == 0:
                # Still root (inside our own user namespace, when the switch to a uid of the
                # pool was not possible): drop every capability, so that the chroot cannot be left.
                for cap in range(64):
                    libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            _prctl(PR_SET_NO_NEW_PRIVS, 1)

        step(done, "no_new_privs", no_privileges)
        # After the fork and the credentials change, which both clear the parent-death signal.
        step({}, "pdeathsig", lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGKILL))
        try:
            os.write(report_fd, json.dumps(done).encode())
        except BaseException:  # noqa: BLE001
            pass

    return preexec


def _prctl(option: int, value: int) -> None:
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


def minimal_env(scratch: Path | None = None) -> dict[str, str]:
    """The worker's whole environment: no PYTHON*, no proxies, one BLAS thread; temporary
    files and matplotlib's cache in the scratch folder (the only place it may write)."""
    env = {
        "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
    }
    if scratch is not None:
        env["TMPDIR"] = str(scratch)
        env["MPLCONFIGDIR"] = str(scratch / ".matplotlib")
    return env


def _bootstrap() -> list[str]:
    """`python -I -c BOOT PROTOCOL_SOURCE WORKER_SOURCE`: the worker needs no engine files."""
    boot = (
        "import sys, types\n"
        "def _load(name, src, fname):\n"
        "    m = types.ModuleType(name); m.__file__ = fname; sys.modules[name] = m\n"
        "    exec(compile(src, fname, 'exec'), m.__dict__)\n"
        "    return m\n"
        "_load('_deepgrade_protocol', sys.argv[1], '<deepgrade protocol>')\n"
        "_load('_deepgrade_worker', sys.argv[2], '<deepgrade worker>')\n"
    )
    return [
        boot,
        (_SANDBOX / "protocol.py").read_text(encoding="utf-8"),
        (_SANDBOX / "worker.py").read_text(encoding="utf-8"),
    ]


def start(spec: SandboxSpec) -> Started:
    """Copy the listed files into a fresh scratch folder and start a sandboxed worker there.

    Returns Started. The caller sends the init request (protocol) and owns cleanup (stop()).
    Raises uids.UidPoolError when no uid of the pool is free within `uid_timeout` seconds.
    """
    slot = _unprivileged_slot(spec.uid_timeout) if spec.drop_user else None
    ids = (slot.uid, slot.gid) if slot is not None else None
    try:
        scratch = Path(tempfile.mkdtemp(prefix="deepgrade-worker-"))
        new_root = Path(tempfile.mkdtemp(prefix="deepgrade-root-"))  # a mount point, empty here
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    for f in spec.files:
        if f.is_file():
            shutil.copyfile(f, scratch / f.name)
            os.chmod(scratch / f.name, 0o644)
    if ids is not None:
        os.chown(scratch, ids[0], ids[1])  # the worker's own folder, and nothing else
    plan = overlay_plan(
        # The engine's own project folder too: in a checkout it holds solutions/ and .git.
        [*spec.hide, _PROJECT, Path(tempfile.gettempdir()), Path.home(), *WORLD_WRITABLE],
        [scratch, *interpreter_paths()],
        drop_user=ids is not None,
    )
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    err_r, err_w = os.pipe()
    rpt_r, rpt_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", *_bootstrap(), str(req_r), str(rep_w)],
            stdin=subprocess.DEVNULL, stdout=err_w, stderr=err_w, pass_fds=(req_r, rep_w),
            cwd=str(scratch), env=minimal_env(scratch), start_new_session=True,
            preexec_fn=_make_preexec(spec.limits, plan, ids, rpt_w,
                                     root_plan(new_root, scratch, spec.cover, _with_proc(ids))),
        )
    except BaseException:
        for fd in (req_r, req_w, rep_r, rep_w, err_r, err_w, rpt_r, rpt_w):
            os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)
        os.rmdir(new_root)
        if slot is not None:
            slot.release()
        raise
    for fd in (req_r, rep_w, err_w, rpt_w):
        os.close(fd)
    report = b""
    while chunk := os.read(rpt_r, 4096):
        report += chunk
    os.close(rpt_r)
    try:
        done = {k: bool(v) for k, v in json.loads(report.decode() or "{}").items()}
    except ValueError:
        done = {}
    protections = {name: done.get(name, False) for name in PROTECTIONS}
    return Started(proc, req_w, rep_r, err_r, scratch, protections, new_root, slot)


def _with_proc(ids) -> bool:
    # Without a PID namespace of its own (and so without a /proc of its own): run as another
    # user, the worker cannot follow /proc/PID/root of the grader's processes; as the same
    # user it could, so /proc is left out unless CUDA needs it.
    return ids is not None or os.path.exists("/dev/nvidiactl")


def stop(started: Started) -> None:
    """Kill the worker and every process it started, remove its scratch folder and give its
    uid back. In its own PID namespace the kernel kills them all with the worker; otherwise
    every process in its network namespace is killed (even one that left its process group)."""
    netns = None
    if started.protections.get("network") and not started.protections.get("pid_namespace"):
        try:
            netns = os.readlink(f"/proc/{started.proc.pid}/ns/net")
        except OSError:
            pass
    try:
        os.killpg(started.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if netns is not None and netns != os.readlink("/proc/self/ns/net"):
        _kill_namespace(netns)
    try:
        started.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    # err_fd belongs to the thread that drains it (proxy): it closes it at end of file, so
    # that the number is never reused under a reader that is still blocked on it.
    for fd in (started.req_fd, started.rep_fd):
        try:
            os.close(fd)
        except OSError:
            pass
    shutil.rmtree(started.scratch, ignore_errors=True)
    if started.root is not None:
        try:
            started.root.rmdir()
        except OSError:
            pass
    if started.slot is not None:
        # A process of the namespace that is still dying keeps the uid from being taken
        # again: acquire() skips uids under which anything runs.
        started.slot.release()
        started.slot = None


def _kill_namespace(netns: str) -> None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == netns:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


_PROBED: dict[str, bool] | None = None


def probe_protections(limits=None) -> dict[str, bool]:
    """Which protections a worker gets on this machine: name -> bool (cached per process).

    Starts `python -I -c pass` with the same setup a worker gets and reads what applied.
    """
    global _PROBED
    if _PROBED is None and resource is None:
        _PROBED = {name: False for name in PROTECTIONS}
    if _PROBED is None:
        from types import SimpleNamespace  # noqa: PLC0415

        limits = limits or SimpleNamespace(cpu_seconds=10, memory_mb=1024, file_size_mb=1,
                                           processes=64, open_files=64)
        try:
            slot = _unprivileged_slot()
        except uids.UidPoolError:
            slot = None
        ids = (slot.uid, slot.gid) if slot is not None else None
        plan = overlay_plan([Path(tempfile.gettempdir()), Path.home(), *WORLD_WRITABLE],
                            interpreter_paths(), ids is not None)
        scratch = Path(tempfile.mkdtemp(prefix="deepgrade-probe-"))
        new_root = Path(tempfile.mkdtemp(prefix="deepgrade-root-"))
        if ids is not None:
            os.chown(scratch, ids[0], ids[1])
        rplan = root_plan(new_root, scratch, [], _with_proc(ids))
        rpt_r, rpt_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", "import numpy"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(scratch), env=minimal_env(),
                start_new_session=True, preexec_fn=_make_preexec(limits, plan, ids, rpt_w, rplan),
            )
        finally:
            os.close(rpt_w)
        report = b""
        while chunk := os.read(rpt_r, 4096):
            report += chunk
        os.close(rpt_r)
        ok = proc.wait() == 0
        if slot is not None:
            slot.release()
        shutil.rmtree(scratch, ignore_errors=True)
        new_root.rmdir()
        try:
            done = json.loads(report.decode() or "{}")
        except ValueError:
            done = {}
        _PROBED = {name: bool(done.get(name, False)) and ok for name in PROTECTIONS}
    return dict(_PROBED)


def active_protections() -> dict[str, bool]:
    """What guarded student code in a grade on this machine: probe_protections() when the
    runner uses the worker (the default), all off when DEEPGRADE_ISOLATION=inprocess."""
    if os.environ.get("DEEPGRADE_ISOLATION", "worker") == "inprocess":
        return {name: False for name in PROTECTIONS}
    return probe_protections()


def sandbox_note(protections: dict[str, bool]) -> str:
    """One line for results.json's top-level output: which protections were active."""
    if not any(protections.values()):
        return "sandbox: none (student code ran in the grader's process: --deepgrade-isolation inprocess)"
    on = [k for k, v in protections.items() if v]
    off = [k for k, v in protections.items() if not v]
    return "sandbox: " + ", ".join(on) + (f" (not available here: {', '.join(off)})" if off else "")
