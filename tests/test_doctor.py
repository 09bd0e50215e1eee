"""`deepgrade doctor`: each probe on a fake machine (a tmp_path with dev/ and library folders),
the worker's private root as computed for a machine with /dev/nvidia0, and the command itself
on this machine (no CUDA here: with --gpu that is a failure)."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from autograder import doctor
from autograder.cli import main
from autograder.doctor import FAIL, INFO, OK, WARN, Check
from autograder.sandbox import cuda
from autograder.sandbox.namespaces import private_root_mounts


def touch(path: Path, mode: int = 0o666) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.chmod(path, mode)
    return path


def fake_dev(tmp_path: Path, names=("nvidia0", "nvidia1", "nvidia10", "nvidiactl", "nvidia-uvm",
                                    "nvidia-uvm-tools", "nvidia-modeset"), mode: int = 0o666) -> Path:
    dev = tmp_path / "dev"
    for name in (*names, "null", "nvidia-caps/nvidia-cap1"):
        touch(dev / name, mode)
    return dev


def test_device_nodes_of_a_fake_dev(tmp_path):
    nodes = cuda.device_nodes(fake_dev(tmp_path))
    assert [n.name for n in nodes.gpus] == ["nvidia0", "nvidia1", "nvidia10"]
    assert nodes.missing == [] and "null" not in nodes.present and "nvidia-caps" not in nodes.present
    checks = doctor.check_device_nodes(nodes, gpu=True, euid=0)
    assert [(c.name, c.status) for c in checks] == [("devices", OK)]
    assert "nvidia0, nvidia1, nvidia10" in checks[0].found


@pytest.mark.parametrize("gpu, status", [(True, FAIL), (False, INFO)])
def test_a_missing_uvm_node_is_named_with_its_fix(tmp_path, gpu, status):
    nodes = cuda.device_nodes(fake_dev(tmp_path, ("nvidia0", "nvidiactl")))
    assert nodes.missing == ["nvidia-uvm"]
    first, optional = doctor.check_device_nodes(nodes, gpu=gpu, euid=0)
    assert first.status == status and "/dev/nvidia-uvm" in first.found and "nvidia-modprobe -u" in first.fix
    assert optional.status == INFO and "nvidia-uvm-tools" in optional.found and "nvidia-modeset" in optional.found


def test_no_nvidia_node_at_all(tmp_path):
    nodes = cuda.device_nodes(fake_dev(tmp_path, ()))
    assert not nodes.any and not cuda.has_nvidia_device(tmp_path / "dev")
    (check,) = doctor.check_device_nodes(nodes, gpu=True, euid=1000)
    assert check.status == FAIL and "no /dev/nvidia*" in check.found and "--gpus all" in check.fix


def test_nodes_a_pool_uid_cannot_open(tmp_path):
    nodes = cuda.device_nodes(fake_dev(tmp_path, ("nvidia0", "nvidiactl", "nvidia-uvm"), mode=0o660))
    as_root = doctor.check_device_nodes(nodes, gpu=True, euid=0)[0]
    assert as_root.status == FAIL and "chmod 666" in as_root.fix and "nvidiactl" in as_root.found
    # Not root: workers run as the grader's own uid, which can open what the grader can.
    assert doctor.check_device_nodes(nodes, gpu=True, euid=1000)[0].status == OK


def ldconfig_text(*paths: Path) -> str:
    lines = [f"{len(paths)} libs found in cache `/etc/ld.so.cache'"]
    lines += [f"\t{p.name} (libc6,x86-64) => {p}" for p in paths]
    return "\n".join(lines) + "\n"


def test_driver_libraries_in_the_cache_and_in_common_folders(tmp_path):
    libcuda = touch(tmp_path / "usr/lib/x86_64-linux-gnu/libcuda.so.1")
    nvml = touch(tmp_path / "usr/local/nvidia/lib64/libnvidia-ml.so.1")
    folders = [tmp_path / "usr/lib/x86_64-linux-gnu", tmp_path / "usr/local/nvidia/lib64", tmp_path / "nowhere"]

    libs = cuda.driver_libraries(ldconfig_text(libcuda, nvml), folders)
    assert [(lib.path, lib.in_cache) for lib in libs["libcuda.so*"]] == [(libcuda, True)]
    assert doctor.check_driver_libraries(libs, gpu=True).status == OK

    # libnvidia-ml only where LD_LIBRARY_PATH would point: a worker (no such variable) misses it.
    libs = cuda.driver_libraries(ldconfig_text(libcuda), folders)
    assert [(lib.path, lib.in_cache) for lib in libs["libnvidia-ml.so*"]] == [(nvml, False)]
    check = doctor.check_driver_libraries(libs, gpu=True)
    assert check.status == WARN and "libnvidia-ml" in check.found
    assert "/etc/ld.so.conf.d/" in check.fix and str(nvml.parent) in check.fix


def test_missing_driver_libraries(tmp_path):
    none = cuda.driver_libraries("", [tmp_path])
    assert doctor.check_driver_libraries(none, gpu=True).status == FAIL
    assert doctor.check_driver_libraries(none, gpu=False).status == INFO
    libcuda = touch(tmp_path / "libcuda.so.1")
    half = cuda.driver_libraries(ldconfig_text(libcuda), [])
    check = doctor.check_driver_libraries(half, gpu=True)
    assert check.status == FAIL and "missing: libnvidia-ml.so*" in check.found


def test_library_dirs_follow_a_symlink_to_the_real_file(tmp_path):
    real = touch(tmp_path / "opt/nvidia/driver/libcuda.so.580.82.07")
    link = tmp_path / "usr/lib64/libcuda.so.1"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    libs = cuda.driver_libraries("", [link.parent])
    assert cuda.library_dirs(libs) == [link.parent, real.parent]


def fake_machine(tmp_path: Path) -> Path:
    """A machine with one GPU: /dev/nvidia0, the driver in /usr and in /opt (outside every
    system path), /lib a link to usr/lib, and a virtual environment in /opt/venv."""
    host = tmp_path / "host"
    fake_dev(host, ("nvidia0", "nvidiactl", "nvidia-uvm"))
    for name in ("etc", "sys", "proc", "opt/venv/bin"):
        (host / name).mkdir(parents=True)
    touch(host / "usr/lib/x86_64-linux-gnu/libcuda.so.1")
    touch(host / "opt/nvidia/lib/libnvidia-ml.so.1")
    (host / "lib").symlink_to("usr/lib")
    return host


def test_private_root_of_a_machine_with_a_gpu(tmp_path):
    host = fake_machine(tmp_path)
    extra = [Path("/usr/lib/x86_64-linux-gnu"), Path("/opt/nvidia/lib"), Path("/lib/x86_64-linux-gnu"),
             Path("/opt/not-there")]
    ro, links = private_root_mounts(host, [Path("/opt/venv")], extra)
    # /dev (so /dev/nvidia0, nvidiactl and nvidia-uvm) and /sys whole; the driver folder that no
    # system path holds bound at its own path; the one inside /usr and the one reached through
    # /lib -> usr/lib not twice; a folder that does not exist not at all.
    assert set(ro) == {Path("/usr"), Path("/etc"), Path("/sys"), Path("/dev"), Path("/opt/venv"), Path("/opt/nvidia/lib")}
    assert links == {Path("/lib"): "usr/lib"}
    assert ro.index(Path("/dev")) < ro.index(Path("/opt/nvidia/lib")), "system paths are bound first"
    assert (host / "dev/nvidia0").exists()


def test_the_same_machine_without_a_gpu_gets_no_driver_folder(tmp_path):
    host = fake_machine(tmp_path)
    ro, _ = private_root_mounts(host, [Path("/opt/venv")], [])
    assert Path("/opt/nvidia/lib") not in ro and Path("/dev") in ro


def test_doctor_checks_the_private_root_of_the_fake_machine(tmp_path):
    host = fake_machine(tmp_path)
    libs = cuda.driver_libraries("", [host / "usr/lib/x86_64-linux-gnu", host / "opt/nvidia/lib"])
    check = doctor.check_private_root(host, libs, [Path("/opt/venv")], private_root=True, gpu=True)
    assert check.status == OK and "/opt/nvidia/lib" in check.found and "/dev" in check.found


@pytest.mark.parametrize("torch_cuda, driver, gpu, status, words", [
    ("12.8", (13, 0), True, OK, "is supported"),
    ("13.0", (13, 0), True, OK, "is supported"),
    ("12.8", (12, 4), True, WARN, "minor-version compatibility"),
    ("13.0", (12, 8), True, FAIL, "too old"),
    ("13.0", (12, 8), False, WARN, "too old"),
    ("12.8", None, True, FAIL, "no NVIDIA driver"),
    (None, None, False, INFO, "no NVIDIA driver"),
])
def test_torch_cuda_against_the_driver(torch_cuda, driver, gpu, status, words):
    check = doctor.check_driver(torch_cuda, driver, "580.159.03", gpu)
    assert check.status == status and words in check.found


def test_torch_build_line():
    assert doctor.check_torch("2.13.0+cpu", None, "", gpu=True).status == FAIL
    assert doctor.check_torch("2.13.0+cpu", None, "", gpu=False).status == INFO
    assert doctor.check_torch("2.11.0+cu130", "13.0", "", gpu=True).status == OK
    missing = doctor.check_torch(None, None, "ModuleNotFoundError: No module named 'torch'", gpu=False)
    assert missing.status == WARN and "pip install torch" in missing.fix


def test_protections_and_the_uid_pool():
    checks = doctor.check_protections({"limits": True, "network": False})
    assert [(c.name, c.status) for c in checks] == [("sandbox: limits", OK), ("sandbox: network", WARN)]
    assert "user namespaces" in checks[1].fix and doctor.exit_status(checks) == 0
    bad = doctor.check_uid_pool(0, {"DEEPGRADE_UIDS": "lots"})
    assert bad.status == FAIL and "DEEPGRADE_UIDS" in bad.found and doctor.exit_status([bad]) == 1
    assert doctor.check_uid_pool(0, {"DEEPGRADE_UIDS": "71000-71003"}).found.startswith("DEEPGRADE_UIDS=71000-71003 (4 uids")
    assert doctor.check_uid_pool(1000, {}).status == INFO


@pytest.mark.parametrize("report, gpu, status, words", [
    ({"torch": "2.13.0+cpu", "cuda_build": None, "available": False,
      "error": "Torch not compiled with CUDA enabled", "seconds": 2.0}, True, FAIL, "no CUDA in the sandboxed worker"),
    ({"torch": "2.13.0+cpu", "cuda_build": None, "available": False, "error": "x"}, False, INFO, "no CUDA"),
    ({"torch": "2.11.0+cu130", "cuda_build": "13.0", "available": False,
      "error": "CUDA driver initialization failed"}, True, FAIL, "driver initialization failed"),
    ({"torch": "2.11.0+cu130", "cuda_build": "13.0", "available": True, "device": "NVIDIA H200",
      "kernel": True, "seconds": 3.2}, True, OK, "NVIDIA H200: CUDA initialized and ran a kernel"),
    ({"torch": "2.11.0+cu130", "cuda_build": "13.0", "available": True, "device": "NVIDIA H200",
      "kernel": False, "error": "the kernel computed 0.0"}, False, FAIL, "the kernel failed"),
    ({"error": "the sandboxed worker could not start: no uid", "start_failed": True}, False, FAIL, "could not start"),
    (None, True, WARN, "no grading.yml"),
])
def test_worker_cuda_verdicts(report, gpu, status, words):
    check = doctor.check_worker_cuda(report, gpu)
    assert check.status == status and words in check.found


@pytest.fixture
def mnist_data(course):
    (found,) = [(label, m) for label, m in doctor.find_data_modules(course) if label == "hw5 mnist_data"]
    return found[1]


def test_data_directory_and_checksums(mnist_data, tmp_path, monkeypatch):
    monkeypatch.setenv(mnist_data.ENV_DATA_DIR, str(tmp_path))
    check = doctor.check_data("hw5 mnist_data", mnist_data, gpu=True)
    assert check.status == FAIL and "missing" in check.found and "train-images-idx3-ubyte.gz" in check.found
    assert f"DEEPGRADE_DATA_DIR={tmp_path}" in check.found
    assert doctor.check_data("hw5 mnist_data", mnist_data, gpu=False).status == INFO
    sums = {}
    for name in mnist_data.FILES.values():
        (tmp_path / name).write_bytes(name.encode())
        sums[name] = hashlib.sha256(name.encode()).hexdigest()
    # The official checksums: files of other bytes are named as not the official ones.
    check = doctor.check_data("hw5 mnist_data", mnist_data, gpu=True)
    assert check.status == FAIL and "wrong SHA-256" in check.found and "t10k-labels-idx1-ubyte.gz" in check.found
    monkeypatch.setattr(mnist_data, "SHA256", sums)
    assert doctor.check_data("hw5 mnist_data", mnist_data, gpu=True).status == OK
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"cut off")
    check = doctor.check_data("hw5 mnist_data", mnist_data, gpu=False)
    assert check.status == WARN and check.found.endswith("wrong SHA-256: t10k-labels-idx1-ubyte.gz")


def test_the_table_names_each_problem_and_its_fix(monkeypatch):
    checks = [Check("devices", OK, "nvidia0, nvidiactl, nvidia-uvm"),
              Check("worker CUDA", FAIL, "no CUDA in the sandboxed worker", "install [the] driver")]
    monkeypatch.setattr(doctor, "run_checks", lambda course, gpu: checks)
    res = CliRunner().invoke(main, ["doctor", "--gpu"])
    assert res.exit_code == 1
    assert "worker CUDA" in res.output and "install [the] driver" in res.output and "not ready" in res.output
    monkeypatch.setattr(doctor, "run_checks", lambda course, gpu: checks[:1])
    res = CliRunner().invoke(main, ["doctor"])
    assert res.exit_code == 0 and "ready for a CPU runner" in res.output


def test_doctor_gpu_on_a_machine_without_cuda(monkeypatch):
    # The whole command on this machine, the probe in a real sandboxed worker.
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    res = CliRunner().invoke(main, ["doctor", "--gpu", "--json"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.output)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False and report["gpu"] is True
    worker = by_name["worker CUDA"]
    assert worker["status"] == FAIL and "no CUDA in the sandboxed worker" in worker["found"], worker
    assert {"sandbox: private_root", "sandbox: uid pool", "torch", "NVIDIA driver", "devices",
            "driver libraries", "private root", "data: hw5 mnist_data"} <= set(by_name)


GPU_PROOF = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_proof.sh"


def test_gpu_proof_script_is_clean_bash():
    assert subprocess.run(["bash", "-n", str(GPU_PROOF)], check=False, capture_output=True).returncode == 0
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run([binary, "--shell=bash", str(GPU_PROOF)], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("venv, words", [("", "set VENV"), ("/nonexistent/venv", "is not a virtual environment")])
def test_gpu_proof_needs_a_venv(tmp_path, venv, words):
    env = {**os.environ, "VENV": venv}
    proc = subprocess.run(["bash", str(GPU_PROOF), str(tmp_path)], check=False, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2 and words in proc.stderr
