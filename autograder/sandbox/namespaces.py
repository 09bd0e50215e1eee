"""The worker's namespaces and mounts: a private read-only root, or covers where it cannot be had.

Used by process.py. enter_private_root() and apply_overlays() run in the child between fork
and exec (the preexec of the worker's Popen): they must not import, and raise OSError for a
step the OS refuses, which the caller records as a protection not applied.

- root_plan() / enter_private_root(): a new root on a tmpfs holding only the system's
  programs and libraries (SYSTEM_PATHS, /dev with any /dev/nvidia* nodes, and the GPU
  driver's libraries where they lie elsewhere: cuda.py), the interpreter and its packages (all
  read-only), the worker's scratch folder (writable), fresh empty /tmp and /dev/shm, a /proc of
  the worker's own PID namespace, and empty read-only covers over package data that grading.yml
  hides (hidden_package_data). Then chroot into it.
- overlay_plan() / apply_overlays(): where no private root can be built, empty tmpfs mounts
  over what the worker must not see (the course, temporary folders, home folders), with the
  folders it needs mounted back inside them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox.cuda import machine_library_dirs

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MS_NOEXEC, MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 8, 1024, 2048, 1 << 21

# Folders any user may write to: covered, so workers of two submissions share no files.
WORLD_WRITABLE = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock")]

# What a private root holds besides the interpreter and the scratch folder: the system's
# programs, libraries and settings, read-only. A top-level symlink (/bin -> usr/bin) is copied
# as a symlink. /proc is a fresh one of the worker's own PID namespace; where that namespace
# is not available, the machine's /proc is bound only when the worker runs as another user
# (that user cannot follow /proc/PID/root of the grader's processes) or CUDA needs it.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
FRESH_TMPFS = ("/dev/shm", "/dev/mqueue", "/tmp")

try:  # POSIX only; elsewhere every step fails and is recorded as not applied
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
except (OSError, TypeError):
    libc = None


def unshare(flags: int) -> None:
    """unshare(2). Raises OSError."""
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare")


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


def interpreter_paths(resolve: bool = True) -> list[Path]:
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
    host_proc: bool = False  # without a PID namespace of its own: bind the machine's /proc


def private_root_mounts(host: Path, interpreter: list[Path],
                        extra: list[Path]) -> tuple[list[Path], dict[Path, str]]:
    """What a private root binds read-only, computed for the machine whose root folder is
    `host` (/, or a fake tree in a test); paths are as the worker sees them (from /).

    - SYSTEM_PATHS and /dev (with every /dev/nvidia* node in it) that are folders under `host`;
      those that are top-level symlinks there (/lib -> usr/lib) come back in `links` instead;
    - then `interpreter` (interpreter_paths()) and `extra` folders (the GPU driver's libraries,
      cuda.machine_library_dirs()) that exist and that no system path already holds.
    Returns (ro, links): the folders to bind, system paths first; symlink path -> target.
    """
    ro, links = [], {}
    for name in SYSTEM_PATHS + ("/dev",):
        p = host / name.lstrip("/")
        if p.is_symlink():
            links[Path(name)] = os.readlink(p)
        elif p.is_dir():
            ro.append(Path(name))
    ro = _topmost(ro)
    # A folder reached through a top-level link (/lib64/...) is already there through its
    # target; cuda.library_dirs() lists the resolved folder as well.
    rest = [p for p in extra if Path(*p.parts[:2]) not in links and (host / p.relative_to("/")).is_dir()]
    return ro + [p for p in _topmost([*interpreter, *rest]) if not _inside(p, ro)], links


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(q == path or q in path.parents for q in folders)


def root_plan(root: Path, scratch: Path, cover: list[Path], with_proc: bool) -> RootPlan:
    """with_proc: bind the machine's /proc read-only when the worker gets no PID namespace
    (and so no /proc of its own)."""
    ro, links = private_root_mounts(Path("/"), interpreter_paths(resolve=False), list(machine_library_dirs()))
    fresh = [Path(p) for p in FRESH_TMPFS if Path(p).is_dir()]
    return RootPlan(root, ro, [scratch], links, fresh, [c for c in cover if c.is_dir()], scratch,
                    {p: _mount_flags(p) for p in ro + [Path("/proc")]}, with_proc)


def _mount_flags(path: Path) -> int:
    """MS_* flags of the mount that holds `path` (nodev, noexec, noatime...), from statvfs."""
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    flags = f & (MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    return flags | (MS_RELATIME if f & os.ST_RELATIME else 0)


def enter_private_root(plan: RootPlan, own_proc: bool) -> None:
    """Runs in the child (preexec): build the root described by `plan` and chroot into it.
    own_proc: the child is in a PID namespace of its own, whose /proc it gets."""
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    new = str(plan.root)
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    for link, target in plan.links.items():
        os.symlink(target, new + str(link))
    def bind(path: Path, writable: bool) -> None:
        target = new + str(path)
        os.makedirs(target, mode=0o755, exist_ok=True)
        mount(str(path), target, None, MS_BIND | MS_REC, None)
        if not writable and path != Path("/dev"):  # /dev/null must stay writable
            # The source's own flags (nodev, noexec) are kept: a user namespace may not drop them.
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | plan.flags.get(path, 0)
            mount(None, target, None, flags, None)

    # The system first; then the fresh /tmp and /dev/shm (inside /dev, so after it); then the
    # interpreter and the scratch folder, which may lie inside /tmp themselves.
    system = [p for p in plan.ro if str(p) in SYSTEM_PATHS + ("/dev",)]
    for path in system:
        bind(path, writable=False)
    if own_proc:
        os.makedirs(new + "/proc", mode=0o555, exist_ok=True)
        mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    elif plan.host_proc:
        bind(Path("/proc"), writable=False)
    for path in plan.fresh:
        target = new + str(path)
        os.makedirs(target, mode=0o755, exist_ok=True)
        # /tmp and /dev/shm of the worker alone (sticky and world-writable, as usual).
        mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    for path in plan.ro:
        if path not in system:
            bind(path, writable=False)
    for path in plan.rw:
        bind(path, writable=True)
    for path in plan.cover:
        target = new + str(path)
        if os.path.isdir(target):
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755,size=4k")
    mount(None, new, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")
    if libc.chroot(new.encode()) != 0:
        raise OSError(ctypes.get_errno(), "chroot")
    # The cwd was set before preexec ran, outside the new root: move it in, or '..' escapes.
    os.chdir(str(plan.cwd))


def overlay_plan(hide: list[Path], keep: list[Path], drop_user: bool) -> dict[Path, list[Path]]:
    """Folders to cover with an empty tmpfs -> the paths inside each to mount back.

    hide: folders the worker must not see. keep: folders it needs (the interpreter, its
    scratch). With drop_user, a folder above a kept path that others cannot traverse (a 0700
    home holding pyenv) is covered too, with that path mounted back, so the worker's uid can reach it.
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


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """mount(2). Raises OSError naming the target."""
    rc = libc.mount(
        source.encode() if source else None, target.encode(),
        fstype.encode() if fstype else None, flags, data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def apply_overlays(plan: dict[Path, list[Path]]) -> None:
    """Runs in the child (preexec): cover each folder of `plan` (overlay_plan) with an empty
    read-only tmpfs and mount back the kept paths inside it."""
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    for cover, keeps in plan.items():
        # O_PATH descriptors reach the kept folders after the tmpfs hides their paths.
        fds = [os.open(k, os.O_PATH | os.O_DIRECTORY) for k in keeps]
        mount("tmpfs", str(cover), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for k, fd in zip(keeps, fds):
            target = str(cover / k.relative_to(cover))
            os.makedirs(target, mode=0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, None)
            os.close(fd)
        mount(None, str(cover), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")


def write_file(path: str, text: str) -> None:
    """Write `text` to a /proc file (uid_map, setgroups) in one write(2)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
