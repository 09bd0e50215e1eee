"""The sandboxed worker and its protocol: round trips, handles, copy-back, batching, limits,
restarts. A toy course in tmp_path is graded once; each toy test checks one behaviour from
inside the trusted pytest, and the project tests here check every toy test's outcome."""
import json
import os
import signal
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox
from autograder.sandbox import namespaces, process
from autograder.sandbox import protocol as P
from autograder.config import load_config
from autograder.grade import grade
from autograder.runner import InfrastructureError

TOY = textwrap.dedent('''
    import os
    import numpy as np

    counter = [0]

    def bump():
        counter[0] += 1
        return counter[0]

    def echo(x):
        return x

    def add(a, b, scale=1):
        return (a + b) * scale, "cache"

    def mutate(x, d, keep):
        if x is not None:
            x *= 2
        d["count"] = d.get("count", 0) + 1
        d["arr"] += 1
        return None

    def fail(n):
        return helper(n)

    def helper(n):
        raise ValueError(f"bad input {n}")

    def exit_call():
        raise SystemExit(0)

    def interrupt():
        raise KeyboardInterrupt

    def die():
        os._exit(3)

    def segfault():
        import ctypes
        ctypes.string_at(0)

    def spin():
        while True:
            pass

    def loud(n):
        print("x" * n)
        return n

    def forbidden():
        import scipy  # noqa: F401

    def engine():
        import autograder  # noqa: F401

    def can_read(path):
        try:
            with open(path, "rb") as fh:
                fh.read(1)
            return True
        except OSError:
            return False

    def network():
        import socket
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("1.1.1.1", 53))
            return "connected"
        except OSError as exc:
            return type(exc).__name__

    def allocate(gb):
        return np.ones(int(gb * 2**30) // 8).sum()

    def big_file(mb):
        with open("big.bin", "wb") as fh:
            for _ in range(mb):
                fh.write(b"\\0" * 2**20)

    def whoami():
        return os.getuid(), os.getcwd(), sorted(os.listdir("."))

    class Model:
        def __init__(self, n):
            self.params = {"W": np.ones(n), "b": np.zeros(1)}
            self.history = []
            self.name = "model"

        def loss(self, x):
            self.history.append(float(x.sum()))
            return float((self.params["W"] * x).sum()), {"W": x.copy()}

    class Liar:
        def __eq__(self, other):
            return True

    def liar():
        return Liar()

    class Sub(np.ndarray):
        def __eq__(self, other):
            return np.ones(self.shape, bool)

    def subclass(x):
        return np.asarray(x).view(Sub)

    def mixed(x):
        return x, Liar(), {"a": 1}

    def object_array():
        return np.array([Liar(), 1], dtype=object)

    def use(obj):
        return type(obj).__name__

    def start_spinner():
        import threading

        def spin():
            while True:
                pass
        threading.Thread(target=spin, daemon=True).start()

    def threads_running():
        import sys
        return len(sys._current_frames())

    def start_child():
        import time
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)

    def processes():
        return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

    def many_strings(n):
        return ["ab"] * n

    def huge_view(n):
        return np.broadcast_to(np.float64(1.0), (n,))

    def kill_self():
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
        return "still here"

    def rogue_reply():
        # Writes a frame of its own on the reply pipe, claiming a header of 100 MB.
        import struct, sys
        os.write(int(sys.argv[-1]), struct.pack("<QI", (100 << 20) + 8, 100 << 20))
        os._exit(0)

    class Flaky:
        def __init__(self):
            self.calls = 0

        @property
        def params(self):
            self.calls += 1
            if self.calls > 1:
                raise ValueError("params is gone")
            return {}
''')

TOY_TESTS = textwrap.dedent('''
    import os
    import numpy as np
    import pytest

    from autograder.loader import StudentCodeError


    def test_roundtrip(student):
        values = [None, True, 3, 2.5, float("nan"), "text", np.float64(1.5), np.int32(7),
                  np.arange(6, dtype=np.float32).reshape(2, 3), np.array(3.0), np.zeros((0, 2)),
                  np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.array([True, False]),
                  np.array([1 + 2j]), (1, [2, {"k": np.ones(2)}]), {(1, "a"): None},
                  np.float64, np.dtype("int16")]
        for v in values:
            got = student.echo(v)
            assert type(got) is type(v) or (isinstance(v, float) and v != v), (v, got)
            if isinstance(v, np.ndarray):
                assert got.dtype == v.dtype and got.shape == v.shape and np.array_equal(got, v)
                assert got.flags.writeable
        assert student.echo((1, [2, {"k": 3}])) == (1, [2, {"k": 3}])


    def test_map_batches(student):
        out = student.add.map([(np.ones(2), np.ones(2)), (np.zeros(2), np.ones(2))],
                              kwargs={"scale": 3}, output=0)
        assert [list(o) for o in out] == [[6.0, 6.0], [3.0, 3.0]]


    def test_handles(student):
        m = student.Model(3)
        assert sorted(m.params) == ["W", "b"] and len(m.params) == 2 and "W" in m.params
        assert np.array_equal(m.params["W"], np.ones(3))
        m.params["W"] = np.full(3, 2.0)
        loss, grads = m.loss(np.ones(3))
        assert loss == 6.0 and set(grads) == {"W"}
        assert len(m.history) == 1 and m.history[0] == 3.0
        assert m.name == "model"
        m.name = "other"
        assert m.name == "other"
        assert dict(m.params.items()).keys() == {"W", "b"}
        assert student.use(m) == "Model" and student.use(m.params) == "dict"


    def test_copy_back(student):
        # State in a dict (bn_param, an optimizer's config) comes back as student code left it.
        d = {"arr": np.zeros(2)}
        keep = np.arange(3.0)
        student.mutate(None, d, keep)
        assert d["count"] == 1 and np.array_equal(d["arr"], [1, 1])
        assert np.array_equal(keep, [0, 1, 2])


    def test_changed_input_array_warns(student):
        # The worker's arrays are its own copies: an array passed directly never changes here,
        # so code which zeroes its inputs cannot make the test's later computations agree with
        # it. The write is a warning (graded by the rule's own tests), not a failure.
        from autograder.loader import InputChangedWarning
        x = np.ones(3)
        d = {"arr": np.zeros(2)}
        with pytest.warns(InputChangedWarning, match="changed the array it was given as argument 1 [(]shape [(]3,[)][)] in place"):
            student.mutate(x, d, np.zeros(1))
        assert np.array_equal(x, [1, 1, 1]) and d["count"] == 1


    def test_exception_is_a_failure_with_student_frames(student):
        with pytest.raises(ValueError) as info:
            student.fail(7)
        text = str(info.value)
        assert isinstance(info.value, StudentCodeError)
        assert "bad input 7" in text and 'File "toy.py"' in text and "in helper" in text
        assert "deepgrade-worker" not in text and "worker.py" not in text


    @pytest.mark.parametrize("name", ["exit_call", "interrupt"])
    def test_exit_is_reported(student, name):
        with pytest.raises(StudentCodeError, match="SystemExit|KeyboardInterrupt"):
            getattr(student, name)()
        assert student.echo(1) == 1  # the worker survived


    def test_fresh_import_a(student):
        assert student.bump() == 1


    def test_fresh_import_b(student):
        assert student.bump() == 1


    def test_liar_is_not_equal(student):
        r = student.liar()
        assert not (r == 1) and r != 1


    def test_subclass_comes_back_plain(student):
        got = student.subclass(np.ones(2))
        assert type(got) is np.ndarray
        x, other, d = student.mixed(np.ones(1))
        assert type(x) is np.ndarray and d == {"a": 1} and not (other == 5)
        assert not isinstance(student.object_array(), np.ndarray)


    def test_forbidden_imports(student):
        with pytest.raises(ImportError, match="forbidden_imports"):
            student.forbidden()
        with pytest.raises(ImportError, match="may not import autograder"):
            student.engine()


    def test_isolation(student):
        assert not student.can_read(__file__), "the worker can read the hidden tests"
        assert student.network() != "connected"
        uid, cwd, files = student.whoami()
        assert files == ["toy.py"]


    def test_limits(student):
        with pytest.raises(MemoryError):
            student.allocate(50)
        with pytest.raises(OSError):
            student.big_file(20)


    def test_output_is_capped(student):
        assert student.loud(10**6) == 10**6


    def test_crash_segfault(student):
        student.segfault()


    def test_after_segfault(student):
        assert student.echo(2) == 2


    def test_crash_exit(student):
        student.die()


    def test_crash_timeout(student):
        student.spin()


    def test_after_timeout(student):
        assert student.echo(3) == 3


    def test_unanswered_failure_is_not_lost(student):
        params = student.Flaky().params
        params["a"] = 1  # sent without waiting; its failure must still fail the test


    def test_thread_left_running(student):
        student.start_spinner()
        assert student.threads_running() == 2


    def test_no_thread_of_the_last_test(student):
        # The worker the spinning thread ran in was replaced: it slows nothing here.
        assert student.threads_running() == 1


    def test_child_left_running(student):
        student.start_child()
        assert len(student.processes()) == 2


    def test_no_process_of_the_last_test(student):
        assert student.processes() == [1]  # PID 1 of its own namespace: the worker alone


    def test_own_pid_namespace_and_uid(student):
        uid, _, _ = student.whoami()
        assert student.processes() == [1]
        from autograder.sandbox import uids
        assert os.getuid() != 0 or uid in uids.pool_range()  # a uid of the pool, not nobody


    def test_kill_self_is_not_possible(student):
        # As PID 1 of its namespace the worker cannot be killed from inside: a SIGKILL it got
        # came from outside, which the grader retries instead of scoring.
        assert student.kill_self() == "still here"


    def test_too_many_strings(student):
        student.many_strings(10_000_000)


    def test_huge_array(student):
        student.huge_view(2_000_000_000)


    def test_object_array_message(student):
        np.asarray(student.object_array(), dtype=float)


    def test_rogue_reply(student):
        student.rogue_reply()
''')


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toycourse")
    sol = root / "solutions" / "toy"
    sol.mkdir(parents=True)
    (sol / "toy.py").write_text(TOY)
    (sol / "test_toy.py").write_text(TOY_TESTS)
    (root / "grading.yml").write_text(textwrap.dedent("""
        assignments:
          toy:
            title: Toy
            files: [toy.py]
            forbidden_imports: [scipy, torch]
            timeouts: {call: 2, test: 10, total: 300, startup: 20}
            limits: {cpu_seconds: 60, memory_mb: 1024, file_size_mb: 4, processes: 16,
                     open_files: 64, output_kb: 4}
            parts:
              all: {points: 10, tests: ["test_*"]}
    """))
    course = load_config(root / "grading.yml")
    sub = root / "submission"
    sub.mkdir()
    (sub / "toy.py").write_text(TOY)
    (sub / "conftest.py").write_text("raise SystemExit('a submitted conftest must never run')\n")
    out = root / "results.json"
    result = grade(course, course.assignment("toy"), sub, out)
    outcomes = {o.name: o for o in result.run.outcomes}
    return result, outcomes, json.loads(out.read_text())


PASSING = [
    "test_roundtrip", "test_map_batches", "test_handles", "test_copy_back", "test_changed_input_array_warns",
    "test_exception_is_a_failure_with_student_frames", "test_exit_is_reported[exit_call]",
    "test_exit_is_reported[interrupt]", "test_fresh_import_a", "test_fresh_import_b",
    "test_liar_is_not_equal", "test_subclass_comes_back_plain", "test_forbidden_imports",
    "test_limits", "test_output_is_capped", "test_after_segfault", "test_after_timeout",
    "test_thread_left_running", "test_no_thread_of_the_last_test", "test_child_left_running",
]
# Need a PID namespace of the worker's own (test_worker_gets_its_own_pid_namespace).
PID_NAMESPACE = ["test_no_process_of_the_last_test", "test_own_pid_namespace_and_uid",
                 "test_kill_self_is_not_possible"]
# Fail with the message shown (test_values_too_large_fail_with_a_clear_message).
TOO_LARGE = {
    "test_too_many_strings": "as plain data (lists, dicts, strings, numbers) it takes more than 4.0 MB",
    "test_huge_array": "an array of 2,000,000,000 elements (14.9 GB)",
    "test_object_array_message": "student code returned an array of dtype object and shape (2,): only arrays "
                                 "of numbers or booleans can be graded",
    "test_rogue_reply": "the worker sent an invalid reply during rogue_reply(): a message whose plain data "
                        "takes 100.0 MB is over the limit",
}


@pytest.mark.parametrize("name", PASSING)
def test_toy_behaviour(toy, name):
    _, outcomes, _ = toy
    assert outcomes[name].status == "passed", outcomes[name].message


def test_isolation_where_the_os_allows(toy):
    _, outcomes, _ = toy
    active = sandbox.probe_protections()
    if active["hidden_paths"] and active["network"]:
        assert outcomes["test_isolation"].status == "passed", outcomes["test_isolation"].message


@pytest.mark.parametrize("name,reason", [
    ("test_crash_segfault", "worker crashed: segfault (signal 11"),
    ("test_crash_exit", "worker exited with status 3"),
    ("test_crash_timeout", "timed out after 2 s"),
    ("test_unanswered_failure_is_not_lost", "params is gone"),
])
def test_crashes_fail_the_test_with_the_reason(toy, name, reason):
    _, outcomes, _ = toy
    assert outcomes[name].status in ("failed", "error") and reason in outcomes[name].message, \
        outcomes[name].message


def test_worker_gets_its_own_pid_namespace(toy):
    _, outcomes, _ = toy
    if not sandbox.probe_protections()["pid_namespace"]:
        pytest.skip("this machine gives the worker no PID namespace of its own")
    for name in PID_NAMESPACE:
        assert outcomes[name].status == "passed", outcomes[name].message


@pytest.mark.parametrize("name", sorted(TOO_LARGE))
def test_values_too_large_fail_with_a_clear_message(toy, name):
    _, outcomes, _ = toy
    assert outcomes[name].status == "failed" and TOO_LARGE[name] in outcomes[name].message, \
        outcomes[name].message
    assert "raised TypeError" not in outcomes[name].message and "a student object" not in outcomes[name].message


def test_results_and_ignored_files(toy):
    result, outcomes, data = toy
    assert len(outcomes) == len(PASSING) + len(PID_NAMESPACE) + len(TOO_LARGE) + 5
    assert data["extra_data"]["ignored"] == ["conftest.py"]
    assert data["extra_data"]["protections"] == sandbox.probe_protections()
    assert "sandbox: " in data["output"]
    passed = len(PASSING) + sum(outcomes[n].status == "passed" for n in ["test_isolation", *PID_NAMESPACE])
    assert data["score"] == pytest.approx(round(10 * passed / len(outcomes), 4))


# --- a worker killed from outside ---------------------------------------------------------------

SLOW = """
import time

def slow():
    time.sleep(1.5)
    return "done"

def quick():
    return "done"
"""
SLOW_TESTS = """
def test_slow(student):
    assert student.slow() == "done"

def test_quick(student):
    assert student.quick() == "done"
"""


def slow_course(root: Path):
    sol = root / "solutions" / "slow"
    sol.mkdir(parents=True)
    (sol / "slow.py").write_text(SLOW)
    (sol / "test_slow.py").write_text(SLOW_TESTS)
    (root / "grading.yml").write_text(textwrap.dedent("""
        assignments:
          slow:
            title: Slow
            files: [slow.py]
            timeouts: {call: 20, test: 30, total: 120, startup: 20}
            parts:
              all: {points: 2, tests: ["test_*"]}
    """))
    course = load_config(root / "grading.yml")
    return course, course.assignment("slow"), sol


def workers_under(folder: Path) -> list[int]:
    """Pids of the sandboxed workers whose scratch folder lies under `folder` (their TMPDIR)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and b"_deepgrade_worker" in Path(f"/proc/{entry}/cmdline").read_bytes() \
                    and f"TMPDIR={folder}".encode() in Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


class Killer(threading.Thread):
    """SIGKILLs, from outside, the workers of a grade that runs in `folder`: the first one
    (once=True) or every one, each after it has run for `after` seconds."""

    def __init__(self, folder: Path, once: bool, after: float = 0.6) -> None:
        super().__init__(daemon=True)
        self.folder, self.once, self.after = folder, once, after
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        seen: dict[int, float] = {}
        while not self.done.is_set():
            for pid in workers_under(self.folder):
                first = seen.setdefault(pid, time.monotonic())
                if pid not in self.killed and time.monotonic() - first >= self.after:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                    if self.once:
                        return
            time.sleep(0.05)


needs_pid_namespace = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not sandbox.probe_protections()["pid_namespace"],
    reason="a kill from outside is told apart from the worker's own only in a PID namespace of its own")


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder that is the temporary folder of the grade and of everything it starts."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return folder


@needs_pid_namespace
def test_a_worker_killed_from_outside_is_retried_not_scored(tmp_path, work):
    course, a, sol = slow_course(tmp_path / "course")
    killer = Killer(work, once=True)
    killer.start()
    try:
        result = grade(course, a, sol)
    finally:
        killer.done.set()
        killer.join()
    assert len(killer.killed) == 1
    assert {o.name: o.status for o in result.run.outcomes} == {"test_slow": "passed", "test_quick": "passed"}
    assert result.scorecard.score == pytest.approx(2)
    assert "graded again" in result.run.log


def trusted_processes(parent: int, folder: Path) -> list[int]:
    """Pids of the trusted pytest processes that `parent` started for a grade in `folder`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            status = Path(f"/proc/{entry}/status").read_text() if entry.isdigit() else ""
            if f"\nPPid:\t{parent}\n" in status and b"--deepgrade-report\0" + str(folder).encode() \
                    in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_test_process_killed_from_outside_is_retried_not_scored(tmp_path, work):
    course, a, sol = slow_course(tmp_path / "course")
    killed = []

    def kill_the_test_process() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not workers_under(work):
            time.sleep(0.05)
        time.sleep(0.6)  # inside slow() by now
        for pid in trusted_processes(os.getpid(), work):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_the_test_process, daemon=True)
    killer.start()
    result = grade(course, a, sol)
    killer.join()
    assert killed, "the test process was not found"
    assert {o.name: o.status for o in result.run.outcomes} == {"test_slow": "passed", "test_quick": "passed"}
    assert result.scorecard.score == pytest.approx(2) and "graded again" in result.run.log


@needs_pid_namespace
def test_a_worker_killed_from_outside_twice_is_an_infrastructure_error(tmp_path, work):
    course, a, sol = slow_course(tmp_path / "course")
    killer = Killer(work, once=False)
    killer.start()
    try:
        with pytest.raises(InfrastructureError, match="cut short twice.*killed from outside"):
            grade(course, a, sol)
    finally:
        killer.done.set()
        killer.join()
    assert len(killer.killed) >= 2


# --- protocol, without a worker ---------------------------------------------------------------

def roundtrip(value):
    enc = P.Encoder(lambda v: (_ for _ in ()).throw(TypeError(type(v).__name__)))
    node = enc.encode(value)
    header, blobs = P.unpack_payload(P.pack_frame({"v": node}, enc.blobs)[8:])
    return P.Decoder(blobs, lambda n: n).decode(header["v"])


def test_protocol_roundtrip_values():
    x = np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2]
    got = roundtrip({"a": (x, 1.5, None), 2: [True, "s"]})
    assert np.array_equal(got["a"][0], x) and got["a"][1:] == (1.5, None) and got[2] == [True, "s"]


@pytest.mark.parametrize("node,blobs", [
    ({"t": "nd", "b": 0}, [b"\x93NUMPY\x01\x00" + b"junk"]),
    ({"t": "nd", "b": 5}, []),
    ({"t": "pickle", "v": "x"}, []),
    ({"t": "h", "id": "1", "k": "object", "r": ""}, []),
    ({"t": "dict", "k": [{"t": "list", "v": []}], "v": [1]}, []),
    ([1, 2], []),
])
def test_protocol_rejects_malformed(node, blobs):
    with pytest.raises(P.ProtocolError):
        P.Decoder(blobs, lambda n: n).decode(node)


def test_protocol_rejects_object_arrays():
    import io
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(P.ProtocolError):
        P.npy_to_array(buf.getvalue())


def test_protocol_frame_size_limit():
    import os
    r, w = os.pipe()
    P.write_frame(w, {"x": "y" * 1000})
    with pytest.raises(P.ProtocolError):
        P.FrameReader(r).read(max_bytes=100)
    os.close(r)
    os.close(w)


def test_probe_protections_names():
    active = sandbox.probe_protections()
    assert set(active) == set(sandbox.PROTECTIONS) and all(type(v) is bool for v in active.values())


PRIVATE_ROOT_CHECK = """
import json, os, sys
probe = {}
kept = tuple(os.path.realpath(p) for p in (sys.prefix, sys.base_prefix))
def files_outside_the_interpreter(top):
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        if os.path.realpath(dirpath).startswith(kept):
            dirnames[:] = []
            continue
        found += filenames
    return found
probe["repo_files"] = files_outside_the_interpreter(sys.argv[1])
probe["covered"] = os.listdir(sys.argv[2])
probe["home_files"] = files_outside_the_interpreter(sys.argv[3])
# A kept folder inside /tmp (where CI keeps its venv) is seen through the worker's fresh /tmp.
probe["kept_in_tmp"] = open(sys.argv[4]).read()
with open("written.txt", "w") as fh:
    fh.write("the scratch folder is writable")
try:
    open(os.path.join(sys.prefix, "planted.py"), "w").write("import os")
    probe["interpreter_writable"] = True
except OSError:
    probe["interpreter_writable"] = False
try:
    os.mkdir("jail"); os.chroot("jail")
    probe["chroot_again"] = True
except OSError:
    probe["chroot_again"] = False
# In its own PID namespace the process is PID 1 and its /proc shows it alone.
probe["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) if os.path.isdir("/proc") else None
print(json.dumps(probe))
"""


@pytest.mark.parametrize("drop_user", [True, False], ids=["as-a-uid-of-the-pool", "same-user"])
def test_private_root_holds_only_the_system_the_interpreter_and_scratch(tmp_path, root, drop_user, request):
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    if not sandbox.probe_protections()["private_root"]:
        pytest.skip("this machine cannot give the worker a private root")
    slot = process._unprivileged_slot() if drop_user else None
    request.addfinalizer(lambda: slot and slot.release())
    ids = (slot.uid, slot.gid) if slot is not None else None
    scratch, mount_point = tmp_path / "scratch", tmp_path / "root"
    scratch.mkdir()
    mount_point.mkdir()
    if ids is not None:
        os.chown(scratch, *ids)
    covered = sandbox.package_paths(["numpy/linalg"])
    plan = namespaces.root_plan(mount_point, scratch, covered, process._with_proc(ids))
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "marker.txt").write_text("kept")
    kept.chmod(0o755)
    plan.ro.append(kept)
    limits = SimpleNamespace(cpu_seconds=20, memory_mb=2048, file_size_mb=1, processes=64, open_files=64)
    r, w = os.pipe()
    proc = subprocess.run(
        [sys.executable, "-I", "-c", PRIVATE_ROOT_CHECK, str(root), str(covered[0]), str(Path.home()),
         str(kept / "marker.txt")],
        cwd=scratch, env=sandbox.minimal_env(scratch), capture_output=True, text=True, timeout=60,
        preexec_fn=process._make_preexec(limits, {}, ids, w, plan))
    os.close(w)
    done = json.loads(os.read(r, 4096))
    os.close(r)
    assert done["private_root"] and proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    # The folders above the interpreter exist (its path is kept), but nothing else in them.
    pids = probe.pop("pids")
    assert probe == {"repo_files": [], "covered": [], "home_files": [], "kept_in_tmp": "kept",
                     "interpreter_writable": False, "chroot_again": False}
    if done["pid_namespace"]:
        assert pids == [1]
    assert (scratch / "written.txt").read_text() == "the scratch folder is writable"
    assert not any(mount_point.iterdir()), "the private root is mounted in the worker's namespace only"
