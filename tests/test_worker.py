"""The sandboxed worker and its protocol: round trips, handles, copy-back, batching, limits,
restarts. A toy course in tmp_path is graded once; each toy test checks one behaviour from
inside the trusted pytest, and the project tests here check every toy test's outcome."""
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from autograder import protocol as P
from autograder import sandbox
from autograder.config import load_config
from autograder.grade import grade

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


    def test_changed_input_array_fails(student):
        # An array passed directly never changes here: the call fails instead, so that code
        # which zeroes its inputs cannot make the test's later computations agree with it.
        x = np.ones(3)
        d = {"arr": np.zeros(2)}
        with pytest.raises(AssertionError, match="changed the array it was given as argument 1 [(]shape [(]3,[)][)] in place"):
            student.mutate(x, d, np.zeros(1))
        assert np.array_equal(x, [1, 1, 1]) and "count" not in d


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
    "test_roundtrip", "test_map_batches", "test_handles", "test_copy_back", "test_changed_input_array_fails",
    "test_exception_is_a_failure_with_student_frames", "test_exit_is_reported[exit_call]",
    "test_exit_is_reported[interrupt]", "test_fresh_import_a", "test_fresh_import_b",
    "test_liar_is_not_equal", "test_subclass_comes_back_plain", "test_forbidden_imports",
    "test_limits", "test_output_is_capped", "test_after_segfault", "test_after_timeout",
]


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


def test_results_and_ignored_files(toy):
    result, outcomes, data = toy
    assert len(outcomes) == len(PASSING) + 5
    assert data["extra_data"]["ignored"] == ["conftest.py"]
    assert data["extra_data"]["protections"] == sandbox.probe_protections()
    assert "sandbox: " in data["output"]
    isolated = outcomes["test_isolation"].status == "passed"
    assert data["score"] == pytest.approx(round(10 * (len(PASSING) + isolated) / (len(PASSING) + 5), 4))


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
print(json.dumps(probe))
"""


@pytest.mark.parametrize("drop_user", [True, False], ids=["as-nobody", "same-user"])
def test_private_root_holds_only_the_system_the_interpreter_and_scratch(tmp_path, root, drop_user):
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    if not sandbox.probe_protections()["private_root"]:
        pytest.skip("this machine cannot give the worker a private root")
    ids = sandbox._unprivileged_ids() if drop_user else None
    scratch, mount_point = tmp_path / "scratch", tmp_path / "root"
    scratch.mkdir()
    mount_point.mkdir()
    if ids is not None:
        os.chown(scratch, *ids)
    covered = sandbox.package_paths(["numpy/linalg"])
    plan = sandbox.root_plan(mount_point, scratch, covered, sandbox._with_proc(ids))
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
        preexec_fn=sandbox._make_preexec(limits, {}, ids, w, plan))
    os.close(w)
    done = json.loads(os.read(r, 4096))
    os.close(r)
    assert done["private_root"] and proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)
    # The folders above the interpreter exist (its path is kept), but nothing else in them.
    assert probe == {"repo_files": [], "covered": [], "home_files": [], "kept_in_tmp": "kept",
                     "interpreter_writable": False, "chroot_again": False}
    assert (scratch / "written.txt").read_text() == "the scratch folder is writable"
    assert not any(mount_point.iterdir()), "the private root is mounted in the worker's namespace only"
