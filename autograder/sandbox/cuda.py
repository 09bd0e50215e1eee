"""What CUDA needs from the machine: the NVIDIA device nodes and the driver's libraries.

Both are looked for under roots given as parameters (a device folder, a list of library
folders, the text of `ldconfig -p`), so that tests can point them at a fake tree. Used by
namespaces.py (the worker's private root must hold the driver's libraries) and by the doctor
(autograder/doctor.py), which says what is missing and how to fix it.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# The nodes a CUDA program opens: one per GPU (nvidia0, nvidia1...), the control node, and the
# unified-memory node (cudaMalloc fails without it). The last two are optional.
REQUIRED_NODES = ("nvidiactl", "nvidia-uvm")
OPTIONAL_NODES = ("nvidia-uvm-tools", "nvidia-modeset")
_GPU_NODE = re.compile(r"nvidia(\d+)$")

# The driver's user-space libraries: libcuda (the driver API every CUDA program loads) and
# libnvidia-ml (NVML: device names and memory, what nvidia-smi reads).
DRIVER_LIBRARIES = ("libcuda.so*", "libnvidia-ml.so*")

# Where drivers put those libraries when the loader's cache does not list them: distribution
# packages, the NVIDIA container toolkit (/usr/local/nvidia), WSL, the CUDA forward-compatible
# driver, and the GPU operator's driver root.
COMMON_LIBRARY_DIRS = (
    "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64",
    "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib", "/usr/local/cuda/compat",
    "/run/nvidia/driver/usr/lib/x86_64-linux-gnu", "/run/nvidia/driver/usr/lib64",
)


@dataclass(frozen=True)
class DeviceNode:
    """One /dev/nvidia* node: its name, whether it is a character device, and its mode bits."""

    name: str
    path: Path
    char_device: bool
    mode: int

    @property
    def world_rw(self) -> bool:
        """Whether any user may open it for reading and writing (as a worker's pool uid must)."""
        return self.mode & 0o006 == 0o006


@dataclass(frozen=True)
class DeviceNodes:
    """The NVIDIA nodes found in a device folder. gpus: nvidia0, nvidia1... in order;
    present: name -> DeviceNode for every node found; missing: required nodes not found."""

    gpus: list[DeviceNode]
    present: dict[str, DeviceNode]
    missing: list[str]

    @property
    def any(self) -> bool:
        """Whether the machine shows any NVIDIA device at all."""
        return bool(self.present)


def device_nodes(dev: Path = Path("/dev")) -> DeviceNodes:
    """The NVIDIA device nodes under `dev` (the machine's /dev, or a fake one in a test)."""
    present: dict[str, DeviceNode] = {}
    try:
        names = sorted(os.listdir(dev))
    except OSError:
        names = []
    for name in names:
        if name.startswith("nvidia") and (_GPU_NODE.match(name) or name in REQUIRED_NODES + OPTIONAL_NODES):
            path = dev / name
            try:
                st = os.stat(path)
            except OSError:
                continue
            present[name] = DeviceNode(name, path, (st.st_mode & 0o170000) == 0o020000, st.st_mode & 0o7777)
    gpus = sorted((n for k, n in present.items() if _GPU_NODE.match(k)),
                  key=lambda n: int(_GPU_NODE.match(n.name).group(1)))
    missing = [n for n in REQUIRED_NODES if n not in present] + ([] if gpus else ["nvidia0"])
    return DeviceNodes(gpus, present, missing)


def has_nvidia_device(dev: Path = Path("/dev")) -> bool:
    """Whether `dev` holds the NVIDIA control node: the machine has (or had) a driver loaded."""
    return (dev / "nvidiactl").exists()


def ldconfig_listing() -> str:
    """The text of `ldconfig -p` (the loader's cache), or "" where ldconfig is not there."""
    exe = shutil.which("ldconfig") or next((p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig")
                                            if os.path.exists(p)), None)
    if exe is None:
        return ""
    try:
        return subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def parse_ldconfig(text: str) -> dict[str, list[Path]]:
    """`ldconfig -p` text -> library file name -> the paths the cache lists for it.

    Lines look like `\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1`.
    """
    out: dict[str, list[Path]] = {}
    for line in text.splitlines():
        name, arrow, path = line.strip().partition(" => ")
        if arrow:
            out.setdefault(name.split(" (")[0], []).append(Path(path.strip()))
    return out


@dataclass(frozen=True)
class DriverLibrary:
    """One driver library file found: where, and whether the loader's cache lists it (a worker
    has no LD_LIBRARY_PATH, so a library that only that variable points at is not found)."""

    pattern: str
    path: Path
    in_cache: bool


def driver_libraries(ldconfig_text: str, dirs: list[Path] | tuple[Path, ...],
                     patterns: tuple[str, ...] = DRIVER_LIBRARIES) -> dict[str, list[DriverLibrary]]:
    """Driver libraries found in the loader's cache (`ldconfig_text`) and in `dirs`.

    Returns: pattern -> the files that match it (cache entries first), one per path.
    """
    cache = parse_ldconfig(ldconfig_text)
    found: dict[str, list[DriverLibrary]] = {p: [] for p in patterns}
    for pattern in patterns:
        seen: set[Path] = set()
        for name, paths in sorted(cache.items()):
            if fnmatch.fnmatchcase(name, pattern):
                for path in paths:
                    if path not in seen:
                        seen.add(path)
                        found[pattern].append(DriverLibrary(pattern, path, True))
        for folder in dirs:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            for name in names:
                path = Path(folder) / name
                if fnmatch.fnmatchcase(name, pattern) and path not in seen:
                    seen.add(path)
                    found[pattern].append(DriverLibrary(pattern, path, False))
    return found


def library_dirs(libs: dict[str, list[DriverLibrary]]) -> list[Path]:
    """The folders a worker must see for `libs` to load: each file's folder, and the folder
    of the file a symlink points to (libcuda.so.1 -> libcuda.so.580.82.07 elsewhere)."""
    out: list[Path] = []
    for entries in libs.values():
        for lib in entries:
            for folder in (lib.path.parent, Path(os.path.realpath(lib.path)).parent):
                if folder not in out:
                    out.append(folder)
    return out


@lru_cache(maxsize=1)
def machine_library_dirs() -> tuple[Path, ...]:
    """library_dirs() of this machine's driver (cached: it runs ldconfig once per process).
    Empty on a machine without the NVIDIA control node, so CPU machines pay nothing."""
    if not has_nvidia_device():
        return ()
    return tuple(library_dirs(driver_libraries(ldconfig_listing(), [Path(d) for d in COMMON_LIBRARY_DIRS])))
