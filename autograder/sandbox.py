"""Start the worker process inside a sandbox: limits, namespaces, an unprivileged user.

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
- ``unprivileged_user``: when the grader runs as root, the worker runs as ``nobody``;
- ``no_new_privs`` (and, when the worker is still root inside its own user namespace, an
  empty capability set) and a parent-death signal, so that the worker can't gain privileges
  and dies with the grader.

The scratch folder holds copies of only the files grading.yml lists (the runner collected
them); the worker's cwd is that folder, it runs ``python -I -B`` with a minimal environment,
and stop() kills every process left in the worker's network namespace.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MS_NOEXEC, MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 8, 1024, 2048, 1 << 21
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 38, 24

# Folders any user may write to: covered, so workers of two submissions share no files.
WORLD_WRITABLE = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock")]

PROTECTIONS = ("isolated_python", "limits", "network", "hidden_paths", "private_root", "unprivileged_user",
               "no_new_privs")

# What a private root holds besides the interpreter and the scratch folder: the system's
# programs, libraries and settings, read-only. A top-level symlink (/bin -> usr/bin) is copied
# as a symlink. /proc is bound only when the worker runs as another user (that user cannot
# follow /proc/PID/root of the grader's processes) or CUDA needs it.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
FRESH_TMPFS = ("/dev/shm", "/dev/mqueue", "/tmp")

try:  # POSIX only; on other systems the module imports and reports every protection off
    import pwd
    import resource

    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
except (ImportError, OSError, TypeError):
    pwd = resource = _libc = None
_AUTOGRADER = Path(__file__).resolve().parent


@dataclass
class SandboxSpec:
    """How to start one worker. files: the graded files to copy into its scratch folder.
    limits: grading.yml's Limits. hide: folders to cover (the course root, the grader's work
    folder)."""

    files: list[Path]
    limits: object
    hide: list[Path] = field(default_factory=list)
    drop_user: bool = True  # when root: run as nobody (False only to recover from a failed start)
    cover: list[Path] = field(default_factory=list)  # folders inside kept paths to hide (package data)


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


def _unprivileged_ids() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


def _topmost(paths: list[Path]) -> list[Path]:
    paths = sorted(set(paths), key=lambda p: len(p.parts))
    out: list[Path] = []
    for p in paths:
        if not any(p == q or q in p.parents for q in out):
            out.append(p)
    return out


def _blocked_ancestors(path: Path) -> list[Path]:
    """Folders above `path` that others (the unprivileged user) cannot traverse."""
    out = []
    for d in reversed(path.parents):
        try:
            if not os.stat(d).st_mode & 0o001:
                out.append(d)
        except OSError:
            pass
    return out


def _interpreter_paths(resolve: bool = True) -> list[Path]:
    """The interpreter's folders and its packages'. resolve=False adds the paths as spelled
    (a venv is found through the path it was started by, symlinks and all)."""
    import numpy  # noqa: PLC0415 - only to find where it lives

    exe = Path(sys.executable)
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(exe)).parent.parent,
             Path(numpy.__file__).resolve().parent.parent}
    out = {p.resolve() for p in paths}
    if not resolve:
        out |= {Path(os.path.abspath(p)) for p in paths | {exe.parent.parent}}
    return sorted(out)


def package_paths(entries: list[str]) -> list[Path]:
    """Folders named 'package/sub/folder' (grading.yml hidden_package_data), found without
    importing the package; entries whose package or folder is not installed are skipped."""
    import importlib.util  # noqa: PLC0415

    out = []
    for entry in entries:
        top, _, rest = entry.partition("/")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        for base in (spec.submodule_search_locations or []) if spec is not None else []:
            folder = Path(base) / rest
            if folder.is_dir():
                out.append(folder.resolve())
    return out


@dataclass
class RootPlan:
    """A private root for the worker: `root` (an empty folder to mount a tmpfs on) gets
    `ro` bound read-only and `rw` bound writable at their own paths, `links` (path -> target)
    as symlinks, fresh empty tmpfs at `fresh`, and empty read-only covers over `cover`."""

    root: Path
    ro: list[Path]
    rw: list[Path]
    links: dict[Path, str]
    fresh: list[Path]
    cover: list[Path]
    cwd: Path
    flags: dict[Path, int] = field(default_factory=dict)  # mount flags each ro source has already


def root_plan(root: Path, scratch: Path, cover: list[Path], with_proc: bool) -> RootPlan:
    ro, links = [], {}
    for name in SYSTEM_PATHS + (("/proc",) if with_proc else ()) + ("/dev",):
        p = Path(name)
        if p.is_symlink():
            links[p] = os.readlink(p)
        elif p.is_dir():
            ro.append(p)
    interp = _interpreter_paths(resolve=False)
    ro = _topmost(ro) + [p for p in _topmost(interp) if not any(q == p or q in p.parents for q in ro)]
    fresh = [Path(p) for p in FRESH_TMPFS if Path(p).is_dir()]
    return RootPlan(root, ro, [scratch], links, fresh, [c for c in cover if c.is_dir()], scratch,
                    {p: _mount_flags(p) for p in ro})


def _mount_flags(path: Path) -> int:
    """MS_* flags of the mount that holds `path` (nodev, noexec, noatime...), from statvfs."""
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    flags = f & (MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    return flags | (MS_RELATIME if f & os.ST_RELATIME else 0)


def _enter_private_root(plan: RootPlan) -> None:
    """Runs in the child (preexec): build the root described by `plan` and chroot into it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    new = str(plan.root)
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    for link, target in plan.links.items():
        os.symlink(target, new + str(link))
    def bind(path: Path, writable: bool) -> None:
        target = new + str(path)
        os.makedirs(target, mode=0o755, exist_ok=True)
        _mount(str(path), target, None, MS_BIND | MS_REC, None)
        if not writable and path != Path("/dev"):  # /dev/null must stay writable
            # The source's own flags (nodev, noexec) are kept: a user namespace may not drop them.
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | plan.flags.get(path, 0)
            _mount(None, target, None, flags, None)

    # The system first; then the fresh /tmp and /dev/shm (inside /dev, so after it); then the
    # interpreter and the scratch folder, which may lie inside /tmp themselves.
    system = [p for p in plan.ro if str(p) in SYSTEM_PATHS + ("/proc", "/dev")]
    for path in system:
        bind(path, writable=False)
    for path in plan.fresh:
        target = new + str(path)
        os.makedirs(target, mode=0o755, exist_ok=True)
        # /tmp and /dev/shm of the worker alone (sticky and world-writable, as usual).
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    for path in plan.ro:
        if path not in system:
            bind(path, writable=False)
    for path in plan.rw:
        bind(path, writable=True)
    for path in plan.cover:
        target = new + str(path)
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755,size=4k")
    _mount(None, new, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")
    if _libc.chroot(new.encode()) != 0:
        raise OSError(ctypes.get_errno(), "chroot")
    # The cwd was set before preexec ran, outside the new root: move it in, or '..' escapes.
    os.chdir(str(plan.cwd))


def overlay_plan(hide: list[Path], keep: list[Path], drop_user: bool) -> dict[Path, list[Path]]:
    """Folders to cover with an empty tmpfs -> the paths inside each to mount back.

    hide: folders the worker must not see. keep: folders it needs (the interpreter, its
    scratch). With drop_user, a folder above a kept path that others cannot traverse (a 0700
    home holding pyenv) is covered too, with that path mounted back, so `nobody` can reach it.
    """
    hide = [p.resolve() for p in hide if p.exists()]
    keep = [p.resolve() for p in keep]
    if drop_user:
        for k in keep:
            blocked = _blocked_ancestors(k)
            if blocked:
                hide.append(blocked[0])
    hide = _topmost(hide)
    # A kept path must not itself be hidden wholesale: drop hides that are inside a kept path.
    hide = [h for h in hide if not any(h == k or k in h.parents for k in keep)]
    plan = {}
    for h in hide:
        plan[h] = _topmost([k for k in keep if h in k.parents])
    return plan


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = _libc.mount(
        source.encode() if source else None, target.encode(),
        fstype.encode() if fstype else None, flags, data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _apply_overlays(plan: dict[Path, list[Path]]) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    for cover, keeps in plan.items():
        # O_PATH descriptors reach the kept folders after the tmpfs hides their paths.
        fds = [os.open(k, os.O_PATH | os.O_DIRECTORY) for k in keeps]
        _mount("tmpfs", str(cover), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for k, fd in zip(keeps, fds):
            target = str(cover / k.relative_to(cover))
            os.makedirs(target, mode=0o755, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, None)
            os.close(fd)
        _mount(None, str(cover), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _limits(limits) -> list[tuple[int, int]]:
    mb = 1024 * 1024
    # CUDA reserves tens of GB of address space it never touches, so on a machine with an
    # NVIDIA device the memory limit counts data (heap and writable mappings) instead.
    memory = resource.RLIMIT_DATA if os.path.exists("/dev/nvidiactl") else resource.RLIMIT_AS
    return [
        (resource.RLIMIT_CPU, int(limits.cpu_seconds)),
        (memory, int(limits.memory_mb) * mb),
        (resource.RLIMIT_FSIZE, int(limits.file_size_mb) * mb),
        (resource.RLIMIT_NPROC, int(limits.processes)),
        (resource.RLIMIT_NOFILE, int(limits.open_files)),
        (resource.RLIMIT_CORE, 0),
    ]


def _make_preexec(limits, plan, ids, report_fd: int, rplan: RootPlan | None = None):
    """The function that runs in the child between fork and exec. It must not import or
    raise: each step's outcome is written to report_fd as JSON and a failed step is skipped."""
    rlimits = _limits(limits)
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

        def namespaces() -> None:
            if ids is not None:
                if _libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) != 0:
                    raise OSError(ctypes.get_errno(), "unshare")
            else:
                if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) != 0:
                    raise OSError(ctypes.get_errno(), "unshare")
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/gid_map", f"{gid} {gid} 1")
                _write("/proc/self/uid_map", f"{uid} {uid} 1")

        if step(done, "network", namespaces):
            if rplan is not None and step(done, "private_root", lambda: _enter_private_root(rplan)):
                done["hidden_paths"] = True
            else:
                done["private_root"] = False
                step(done, "hidden_paths", lambda: _apply_overlays(plan))
        else:
            done["hidden_paths"] = done["private_root"] = False

        def set_limits() -> None:
            for which, value in rlimits:
                soft, hard = resource.getrlimit(which)
                if hard != resource.RLIM_INFINITY:
                    value = min(value, hard)
                resource.setrlimit(which, (value, value))

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
                # Still root (inside our own user namespace, when the switch to nobody was
                # not possible): drop every capability, so that the chroot cannot be left.
                for cap in range(64):
                    _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            _prctl(PR_SET_NO_NEW_PRIVS, 1)

        step(done, "no_new_privs", no_privileges)
        # After the credentials change: a uid change clears the parent-death signal.
        step({}, "pdeathsig", lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGKILL))
        try:
            os.write(report_fd, json.dumps(done).encode())
        except BaseException:  # noqa: BLE001
            pass

    return preexec


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
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
        (_AUTOGRADER / "protocol.py").read_text(encoding="utf-8"),
        (_AUTOGRADER / "worker.py").read_text(encoding="utf-8"),
    ]


def start(spec: SandboxSpec) -> Started:
    """Copy the listed files into a fresh scratch folder and start a sandboxed worker there.

    Returns Started. The caller sends the init request (protocol) and owns cleanup (stop()).
    """
    ids = _unprivileged_ids() if spec.drop_user else None
    scratch = Path(tempfile.mkdtemp(prefix="deepgrade-worker-"))
    new_root = Path(tempfile.mkdtemp(prefix="deepgrade-root-"))  # a mount point, empty here
    for f in spec.files:
        if f.is_file():
            shutil.copyfile(f, scratch / f.name)
            os.chmod(scratch / f.name, 0o644)
    if ids is not None:
        os.chown(scratch, ids[0], ids[1])  # the worker's own folder, and nothing else
    plan = overlay_plan(
        # The engine's own project folder too: in a checkout it holds solutions/ and .git.
        [*spec.hide, _AUTOGRADER.parent, Path(tempfile.gettempdir()), Path.home(), *WORLD_WRITABLE],
        [scratch, *_interpreter_paths()],
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
    return Started(proc, req_w, rep_r, err_r, scratch, protections, new_root)


def _with_proc(ids) -> bool:
    # Run as another user, the worker cannot follow /proc/PID/root of the grader's processes;
    # as the same user it could, so /proc is left out unless CUDA needs it.
    return ids is not None or os.path.exists("/dev/nvidiactl")


def stop(started: Started) -> None:
    """Kill the worker, every process it started (even one that left its process group: all
    share its network namespace), and remove its scratch folder."""
    netns = None
    if started.protections.get("network"):
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
        ids = _unprivileged_ids()
        plan = overlay_plan([Path(tempfile.gettempdir()), Path.home(), *WORLD_WRITABLE],
                            _interpreter_paths(), ids is not None)
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
