"""`deepgrade doctor`: what a grading runner needs, checked on this machine.

Each check is one line: its status (ok, info, warn or fail), what was found, and the fix.

- sandbox: the protections a worker gets here (the same list results.json reports) and the
  uid pool the workers run under when the grader is root;
- torch: the build (CPU or CUDA) and its CUDA version; the driver: its version and the newest
  CUDA it runs;
- devices: /dev/nvidia0.., nvidiactl and nvidia-uvm (CUDA cannot start without them),
  nvidia-uvm-tools and nvidia-modeset (optional);
- driver libraries: libcuda.so* and libnvidia-ml.so*, in the loader's cache or a common
  folder, and inside the worker's private root;
- worker CUDA: a worker started exactly as the grader starts one (the sandbox, the limits of
  the course's GPU assignment) initializes CUDA and runs one small kernel;
- data: the data directory that a course support module declares (hw5's mnist_data: the
  official MNIST IDX files in DEEPGRADE_DATA_DIR), its files and their SHA-256.

On a GPU runner (`--gpu`) the CUDA and data checks are required: a problem there is a fail and
the exit status is 1. Without `--gpu` they only inform (a CPU runner defers the GPU parts).

Every probe takes the folders it looks in as parameters (a device folder, library folders, the
text of `ldconfig -p`), so that the tests can give it a fake machine.
"""
from __future__ import annotations

import copy
import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.sandbox import cuda

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"

# A support module that declares a data directory (hw5's mnist_data.py) has these names.
DATA_MODULE_NAMES = ("ENV_DATA_DIR", "FILES", "SHA256", "resolve_data_dir", "sha256_of")

# The fix for each sandbox protection that this machine does not allow.
PROTECTION_FIXES = {
    "isolated_python": "the worker could not start `python -I`: reinstall the interpreter",
    "limits": "setrlimit was refused: raise the grader's hard limits (ulimit -H) to grading.yml's `limits`",
    "network": "no new user or network namespace: allow unprivileged user namespaces "
               "(sysctl user.max_user_namespaces=15000, kernel.unprivileged_userns_clone=1, "
               "kernel.apparmor_restrict_unprivileged_userns=0) or run the grader as root; in a "
               "container, allow unshare (docker run --security-opt seccomp=unconfined, or --privileged)",
    "hidden_paths": "no new mount namespace (see `network`): the worker could read the course folder",
    "private_root": "the private root could not be mounted (mount or chroot refused): in a container, "
                    "allow mounts in user namespaces; the course folder is covered instead",
    "pid_namespace": "no new PID namespace: the worker sees the machine's processes; allow user "
                     "namespaces (see `network`) or run the grader as root",
    "unprivileged_user": "run the grader as root: each worker then runs as a uid of the pool "
                         "(DEEPGRADE_UIDS), apart from other submissions graded at once",
    "no_new_privs": "prctl(PR_SET_NO_NEW_PRIVS) was refused: a kernel of 3.5 or later is needed",
}

INSTALL_CUDA_TORCH = ("pip install a CUDA build of torch for this driver's CUDA version (torch's "
                      "'Get started' page gives the index URL of each CUDA build)")
DRIVER_FIX = ("install the NVIDIA driver (nvidia-smi must work); in a container, start it with the "
              "GPUs (docker run --gpus all, with the NVIDIA container toolkit)")


@dataclass
class Check:
    """One line of the report. status: ok, info, warn or fail; found: what was seen; fix: what
    to do about it ("" when nothing)."""

    name: str
    status: str
    found: str
    fix: str = ""


def _problem(gpu: bool) -> str:
    """A CUDA problem is a fail on a GPU runner, and only informs elsewhere."""
    return FAIL if gpu else INFO


# --- sandbox ------------------------------------------------------------------------------------

def check_protections(protections: dict[str, bool]) -> list[Check]:
    """One line per protection of the sandbox (PROTECTIONS, as results.json lists them)."""
    out = []
    for name, on in protections.items():
        if on:
            out.append(Check(f"sandbox: {name}", OK, "applied"))
        else:
            # Grading still works without it (results.json says so), with less isolation.
            out.append(Check(f"sandbox: {name}", WARN, "not available here",
                             PROTECTION_FIXES.get(name, "see autograder/sandbox/process.py")))
    return out


def check_uid_pool(euid: int, env: dict[str, str] | None = None) -> Check:
    """The uid pool the workers take their uids from (used when the grader runs as root)."""
    from autograder.sandbox import uids

    try:
        pool = uids.pool_range(env)
    except uids.UidPoolError as exc:
        return Check("sandbox: uid pool", FAIL, str(exc), f"set {uids.ENV}=FIRST-LAST (e.g. 70000-70063)")
    found = f"{uids.ENV}={pool.start}-{pool.stop - 1} ({len(pool)} uids: one per grade running at once)"
    if euid != 0:
        return Check("sandbox: uid pool", INFO, found + "; not used: the grader is not root",
                     PROTECTION_FIXES["unprivileged_user"])
    return Check("sandbox: uid pool", OK, found)


# --- torch and the driver -------------------------------------------------------------------------

def torch_build() -> tuple[str | None, str | None, str]:
    """(torch version, its CUDA version or None for a CPU build, error) of this interpreter."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return None, None, f"{type(exc).__name__}: {exc}"
    return str(torch.__version__), torch.version.cuda, ""


def check_torch(version: str | None, cuda_version: str | None, error: str, gpu: bool) -> Check:
    if version is None:
        return Check("torch", FAIL if gpu else WARN, f"not importable ({error})",
                     "pip install torch (the assignments that use PyTorch cannot be graded without it)")
    if cuda_version is None:
        return Check("torch", _problem(gpu), f"torch {version}: a CPU build (no CUDA)", INSTALL_CUDA_TORCH)
    return Check("torch", OK, f"torch {version}, built for CUDA {cuda_version}")


def driver_cuda_version(libraries: list[Path] | tuple[Path, ...] = ()) -> tuple[int, int] | None:
    """The newest CUDA version the installed driver runs (cuDriverGetVersion), as (major,
    minor), or None when libcuda cannot be loaded. `libraries`: libcuda files to try after
    the loader's own search."""
    for name in ("libcuda.so.1", "libcuda.so", *map(str, libraries)):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        value = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(value)) == 0 and value.value > 0:
            return value.value // 1000, (value.value % 1000) // 10
    return None


def driver_version(proc: Path = Path("/proc")) -> str | None:
    """The kernel driver's version (580.159.03): /proc/driver/nvidia/version, else nvidia-smi."""
    try:
        match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d[\w.]*)",
                          (proc / "driver/nvidia/version").read_text(errors="replace"))
        if match:
            return match.group(1)
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0] if out else None


def check_driver(torch_cuda: str | None, driver_cuda: tuple[int, int] | None, version: str | None,
                 gpu: bool) -> Check:
    """The driver against torch's CUDA: a driver runs CUDA up to its own version, and builds
    of its major version after it (minor-version compatibility, with a warning)."""
    if driver_cuda is None:
        return Check("NVIDIA driver", _problem(gpu), "no NVIDIA driver (libcuda cannot be loaded)", DRIVER_FIX)
    found = f"driver {version or '(version unknown)'}, runs CUDA up to {driver_cuda[0]}.{driver_cuda[1]}"
    if torch_cuda is None:
        return Check("NVIDIA driver", OK, found + "; torch has no CUDA to compare (see torch)")
    try:
        want = tuple(int(x) for x in torch_cuda.split(".")[:2])
    except ValueError:
        return Check("NVIDIA driver", WARN, found + f"; torch's CUDA version {torch_cuda!r} is unreadable")
    if want[0] > driver_cuda[0]:
        return Check("NVIDIA driver", FAIL if gpu else WARN, found + f": too old for torch's CUDA {torch_cuda}",
                     f"update the driver to one for CUDA {torch_cuda}, or install torch built for CUDA "
                     f"{driver_cuda[0]}.x or older")
    if want > driver_cuda:
        return Check("NVIDIA driver", WARN, found + f"; torch wants CUDA {torch_cuda} (runs through minor-version "
                     "compatibility; kernels compiled just in time may fail)",
                     f"update the driver to one for CUDA {torch_cuda}")
    return Check("NVIDIA driver", OK, found + f"; torch's CUDA {torch_cuda} is supported")


# --- devices and libraries -------------------------------------------------------------------------

def check_device_nodes(nodes: cuda.DeviceNodes, gpu: bool, euid: int) -> list[Check]:
    """The required nodes, then the optional ones."""
    if not nodes.any:
        return [Check("devices", _problem(gpu), "no /dev/nvidia* device nodes", DRIVER_FIX)]
    gpus = ", ".join(n.name for n in nodes.gpus) or "no GPU node"
    out = []
    if nodes.missing:
        uvm = "nvidia-uvm" in nodes.missing
        fix = ("load the unified-memory module: nvidia-modprobe -u -c=0 (or modprobe nvidia-uvm and create the node)"
               if uvm and len(nodes.missing) == 1 else DRIVER_FIX + "; `nvidia-smi` creates the nodes")
        out.append(Check("devices", _problem(gpu), f"{gpus}; missing: {', '.join('/dev/' + m for m in nodes.missing)}",
                         fix))
    else:
        closed = [n.name for n in nodes.present.values() if not n.world_rw]
        found = f"{gpus}, {', '.join(cuda.REQUIRED_NODES)}"
        if closed and euid == 0:
            # As root the grader runs each worker as a uid of the pool, which must open them.
            out.append(Check("devices", _problem(gpu), found + f"; not readable and writable by every user: "
                             f"{', '.join(closed)}", "chmod 666 /dev/nvidia* (the driver's default; "
                             "NVreg_DeviceFileMode=0666): workers run as uids of the pool"))
        else:
            out.append(Check("devices", OK, found))
    optional = [n for n in cuda.OPTIONAL_NODES if n not in nodes.present]
    if optional:
        out.append(Check("devices (optional)", INFO, f"missing: {', '.join('/dev/' + n for n in optional)}",
                         "only profilers (nvidia-uvm-tools) and displays (nvidia-modeset) use them"))
    return out


def check_driver_libraries(libs: dict[str, list[cuda.DriverLibrary]], gpu: bool) -> Check:
    """Each driver library must be found; one the loader's cache does not list is found by a
    worker only if it is in a folder the loader searches by default (its environment has no
    LD_LIBRARY_PATH)."""
    missing = [p for p, found in libs.items() if not found]
    names = "; ".join(f"{found[0].path}" for found in libs.values() if found)
    if len(missing) == len(libs):
        return Check("driver libraries", _problem(gpu), f"none of {', '.join(libs)} found", DRIVER_FIX)
    if missing:
        return Check("driver libraries", _problem(gpu), f"{names}; missing: {', '.join(missing)}",
                     "install the driver's user-space libraries (the package that holds libcuda.so.1 and "
                     "libnvidia-ml.so.1, of the kernel driver's version)")
    uncached = [p for p, found in libs.items() if not any(f.in_cache for f in found)]
    if uncached:
        folders = sorted({str(libs[p][0].path.parent) for p in uncached})
        return Check("driver libraries", WARN if gpu else INFO,
                     f"{names}; not in the loader's cache: {', '.join(uncached)}",
                     f"a worker has no LD_LIBRARY_PATH: echo {' '.join(folders)} > /etc/ld.so.conf.d/nvidia.conf "
                     "&& ldconfig")
    return Check("driver libraries", OK, names + " (in the loader's cache)")


def check_private_root(host: Path, libs: dict[str, list[cuda.DriverLibrary]], interpreter: list[Path],
                       private_root: bool, gpu: bool) -> Check:
    """Whether the worker's private root (namespaces.private_root_mounts for the machine at
    `host`) holds /dev, /sys and every folder of the driver's libraries."""
    from autograder.sandbox.namespaces import private_root_mounts

    # The libraries were found under `host`; the worker sees them from its own /.
    dirs = [Path("/") / d.relative_to(host) if d.is_relative_to(host) else d for d in cuda.library_dirs(libs)]
    ro, links = private_root_mounts(host, interpreter, dirs)

    def visible(path: Path) -> bool:
        top = Path(*path.parts[:2])
        if top in links:  # through a top-level link (/lib64 -> usr/lib64): where it points
            path = Path("/") / links[top].lstrip("/") / Path(*path.parts[2:])
        return any(q == path or q in path.parents for q in ro)

    needed = [Path("/dev"), Path("/sys"), *dirs]
    hidden = [str(p) for p in needed if not visible(p)]
    if hidden:
        return Check("private root", _problem(gpu), f"the worker would not see: {', '.join(hidden)}",
                     "report this: namespaces.private_root_mounts() must bind them")
    found = f"binds {', '.join(str(p) for p in ro if not any(str(p) == str(i) for i in interpreter))}"
    if not private_root:
        return Check("private root", INFO, "not built on this machine (see sandbox: private_root); the worker "
                     "sees the machine's /dev, /sys and libraries")
    return Check("private root", OK, found + " read-only; /proc of its own PID namespace (or the machine's)")


# --- CUDA in a sandboxed worker --------------------------------------------------------------------

PROBE_MODULE = "deepgrade_cuda_probe"
# Runs inside the worker as a submitted module would: can CUDA start there and run a kernel?
PROBE_SOURCE = '''"""deepgrade doctor's probe: runs inside a sandboxed worker."""


def cuda_probe():
    import warnings

    report = {"torch": None, "cuda_build": None, "available": False, "device": None,
              "kernel": False, "error": None}
    try:
        import torch
    except Exception as exc:
        report["error"] = "import torch failed: %s: %s" % (type(exc).__name__, exc)
        return report
    # As plain strings: torch's version object would cross as a handle, not a value.
    report["torch"] = str(torch.__version__)
    report["cuda_build"] = None if torch.version.cuda is None else str(torch.version.cuda)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    report["available"] = bool(available)
    if not available:
        # is_available() says no reason; init() raises with it (no driver, error 304...).
        reasons = [str(w.message).strip() for w in caught]
        try:
            torch.cuda.init()
        except Exception as exc:
            reasons.append(str(exc).strip() or type(exc).__name__)
        report["error"] = "; ".join(reasons) or "torch.cuda.is_available() is False"
        return report
    try:
        report["device"] = str(torch.cuda.get_device_name(0))
        x = torch.arange(4096, device="cuda", dtype=torch.float32)
        total = float((x * 2.0).sum().item())  # .item() waits for the kernel
        expected = 4095.0 * 4096.0
        report["kernel"] = total == expected
        if total != expected:
            report["error"] = "the kernel computed %r, expected %r" % (total, expected)
    except Exception as exc:
        report["error"] = "%s: %s" % (type(exc).__name__, exc)
    return report
'''


class _NoInfraLog:
    """TestSession's log of infrastructure failures, outside pytest: nothing to record."""

    def record(self, exc) -> None:
        pass

    def watch(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)


def probe_assignment(course):
    """The assignment whose limits and timeouts the probe worker gets: the first with a part
    on the GPU runner, else the first; None without a course."""
    from autograder.config import natural_order

    if course is None or not course.assignments:
        return None
    names = natural_order(course.assignments)
    for name in names:
        a = course.assignment(name)
        if any(a.part_runner(p) == "gpu" for p in a.parts):
            return a
    return course.assignment(names[0])


def worker_cuda_report(assignment) -> dict:
    """Start a sandboxed worker as the grader does for `assignment` (its limits, timeouts and
    hidden package data) with the probe as its only module, and call it.

    Returns the probe's dict (torch, cuda_build, available, device, kernel, error) and
    "seconds" (start and probe), or {"error": ..., "start_failed": True} when no worker
    started. The grading path is the real one: WorkerPool, the proxy, the protocol."""
    from autograder.loader import StudentCodeError
    from autograder.proxy import StudentNamespace, TestSession
    from autograder.sandbox.connection import WorkerPool

    probe = copy.copy(assignment)
    probe.files, probe.support_files, probe.forbidden_imports = [f"{PROBE_MODULE}.py"], [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deepgrade-doctor-") as tmp:
        folder = Path(tmp)
        (folder / f"{PROBE_MODULE}.py").write_text(PROBE_SOURCE, encoding="utf-8")
        pool = WorkerPool(probe, folder, [probe.root])
        try:
            try:
                conn, _ = pool.fresh_test(probe.timeouts.startup)
            except StudentCodeError as exc:
                return {"error": f"the sandboxed worker could not start: {exc}", "start_failed": True}
            session = TestSession(pool, probe, _NoInfraLog())
            session.conn = conn
            try:
                report = dict(StudentNamespace(session).cuda_probe())
            except StudentCodeError as exc:
                report = {"error": f"the probe failed in the worker: {exc}"}
        finally:
            pool.close()
    report["seconds"] = time.perf_counter() - start
    report["protections"] = pool.protections or {}
    return report


def check_worker_cuda(report: dict | None, gpu: bool) -> Check:
    """The worker probe's verdict. None: no course, so no worker limits to start one with."""
    name = "worker CUDA"
    if report is None:
        return Check(name, WARN, "no grading.yml: no worker started", "run in the course folder or pass --config")
    if report.get("start_failed"):
        return Check(name, FAIL, report["error"], "see the sandbox lines above; `pytest tests/test_worker.py` "
                     "in a checkout shows which step fails")
    seconds = f" ({report['seconds']:.1f} s)" if "seconds" in report else ""
    if report.get("torch") is None:
        return Check(name, FAIL if gpu else WARN, f"no torch in the worker: {report.get('error')}",
                     "install torch in the interpreter the grader runs (the worker uses the same one)")
    if not report.get("available"):
        why = report.get("error") or "torch.cuda.is_available() is False"
        build = "a CPU build" if report.get("cuda_build") is None else f"CUDA {report['cuda_build']}"
        fix = INSTALL_CUDA_TORCH if report.get("cuda_build") is None else (
            "fix the lines above (devices, driver libraries); if they are ok, the sandbox hides "
            "something CUDA needs: compare with DEEPGRADE_ISOLATION=inprocess")
        return Check(name, _problem(gpu), f"no CUDA in the sandboxed worker (torch {report['torch']}, {build}): "
                     f"{_short(why)}{seconds}", fix)
    if not report.get("kernel"):
        return Check(name, FAIL, f"{report.get('device')}: CUDA started but the kernel failed: "
                     f"{_short(report.get('error'))}{seconds}",
                     "check the driver against torch's CUDA (line above) and the grading.yml memory limit")
    return Check(name, OK, f"{report['device']}: CUDA initialized and ran a kernel in a sandboxed worker{seconds}")


def _short(text, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- data ----------------------------------------------------------------------------------------

def find_data_modules(course) -> list[tuple[str, object]]:
    """(label, module) for each support module of the course that declares a data directory
    (DATA_MODULE_NAMES), loaded from solutions/ (or the release when there is none)."""
    from autograder.loader import load_modules

    out = []
    if course is None:
        return out
    for a in course.assignments.values():
        if not a.support_module_names:
            continue
        folder = a.solution_dir if a.solution_dir.is_dir() else a.release_dir
        loaded = load_modules(folder, a.support_module_names)
        for name, module in loaded.modules.items():
            if all(hasattr(module, attr) for attr in DATA_MODULE_NAMES):
                out.append((f"{a.name} {name}", module))
    return out


def check_data(label: str, module, gpu: bool) -> Check:
    """The data directory of `module` (resolve_data_dir(): its environment variable, or the
    default folder), each of its FILES present and of the SHA-256 that SHA256 states."""
    env = module.ENV_DATA_DIR
    folder = Path(module.resolve_data_dir(None))
    where = f"{env}={os.environ[env]}" if os.environ.get(env) else f"{folder} ({env} is not set)"
    names = list(module.FILES.values())
    missing = [n for n in names if not (folder / n).is_file()]
    name = f"data: {label}"
    if missing:
        return Check(name, _problem(gpu), f"{where}: missing {', '.join(missing)}",
                     f"copy the official files into {folder}, or set {env} to the folder that holds them "
                     "(the GPU runner grades the full-data parts with them)")
    bad = []
    for n in names:
        expected = module.SHA256.get(n)
        if expected is not None and module.sha256_of(folder / n) != expected.lower():
            bad.append(n)
    if bad:
        return Check(name, FAIL if gpu else WARN, f"{where}: wrong SHA-256: {', '.join(bad)}",
                     f"replace {', '.join(bad)} in {folder} with intact copies of the official files")
    return Check(name, OK, f"{where}: {len(names)} files, SHA-256 as expected")


# --- all of it -------------------------------------------------------------------------------------

def run_checks(course, gpu: bool, host: Path = Path("/")) -> list[Check]:
    """Every check, in the order a runner needs them. course: the CourseConfig or None."""
    from autograder.sandbox import probe_protections
    from autograder.sandbox.namespaces import interpreter_paths

    euid = os.geteuid()
    checks: list[Check] = []
    protections = probe_protections()
    checks += check_protections(protections)
    checks.append(check_uid_pool(euid))
    version, torch_cuda, error = torch_build()
    checks.append(check_torch(version, torch_cuda, error, gpu))
    libs = cuda.driver_libraries(cuda.ldconfig_listing(),
                                 [host / d.lstrip("/") for d in cuda.COMMON_LIBRARY_DIRS])
    libcuda = [lib.path for lib in libs["libcuda.so*"]]
    checks.append(check_driver(torch_cuda, driver_cuda_version(libcuda), driver_version(host / "proc"), gpu))
    checks += check_device_nodes(cuda.device_nodes(host / "dev"), gpu, euid)
    checks.append(check_driver_libraries(libs, gpu))
    checks.append(check_private_root(host, libs, interpreter_paths(resolve=False),
                                     protections.get("private_root", False), gpu))
    assignment = probe_assignment(course)
    checks.append(check_worker_cuda(worker_cuda_report(assignment) if assignment is not None else None, gpu))
    for label, module in find_data_modules(course):
        checks.append(check_data(label, module, gpu))
    return checks


def exit_status(checks: list[Check]) -> int:
    """0 when no check failed, else 1."""
    return 1 if any(c.status == FAIL for c in checks) else 0


def as_json(checks: list[Check], gpu: bool) -> dict:
    """The report for machines: {"ok", "gpu", "checks": [{name, status, found, fix}]}."""
    return {"ok": exit_status(checks) == 0, "gpu": gpu, "checks": [asdict(c) for c in checks]}


_STYLE = {OK: "green", INFO: "dim", WARN: "yellow", FAIL: "bold red"}


def print_report(checks: list[Check], gpu: bool, console) -> None:
    """A rich table, one row per check, then one line with the verdict."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"deepgrade doctor ({'GPU runner' if gpu else 'CPU runner; --gpu for a GPU runner'})")
    for column in ("check", "status", "found", "fix"):
        table.add_column(column, overflow="fold")
    for c in checks:
        style = _STYLE.get(c.status, "")
        table.add_row(escape(c.name), f"[{style}]{c.status}[/{style}]", escape(c.found), escape(c.fix))
    console.print(table)
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        console.print(f"[bold red]not ready[/bold red]: {escape(', '.join(failed))}")
    else:
        console.print(f"[green]ready[/green] for a {'GPU' if gpu else 'CPU'} runner")
