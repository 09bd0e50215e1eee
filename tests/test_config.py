"""grading.yml is validated, and every mistake is named with its file and key."""
import textwrap

import pytest

from autograder.config import ConfigError, load_config

GOOD = """
assignments:
  hwx:
    title: Toy
    files: [toy.py]
    parts:
      first: {points: 6, tests: [test_first_*]}
      second: {points: 4, tests: ["test_toy.py::test_second"], runner: gpu}
"""


@pytest.fixture
def tree(tmp_path):
    sol = tmp_path / "solutions" / "hwx"
    (sol / "hidden").mkdir(parents=True)
    (sol / "toy.py").write_text("def f():\n    return 1\n")
    (sol / "test_toy.py").write_text("def test_first_a(student):\n    pass\n\ndef test_second(student):\n    pass\n")
    (sol / "hidden" / "test_toy_hidden.py").write_text("def test_first_b(student):\n    pass\n")
    return tmp_path


def write(tree, text):
    path = tree / "grading.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_loads_typed_objects_with_defaults(tree):
    course = load_config(write(tree, GOOD))
    a = course.assignment("hwx")
    assert a.files == ["toy.py"] and a.module_names == ["toy"]
    assert a.parts["first"].points == 6
    assert a.part_runner("first") == "cpu" and a.part_runner("second") == "gpu"
    assert a.timeouts.call == 30 and a.limits.memory_mb == 4096
    assert a.part_of("test_toy_hidden.py", "test_first_b") == "first"
    assert a.part_of("test_toy.py", "test_second") == "second"
    assert a.part_of("other.py", "test_second") is None


def test_unknown_key_is_named(tree):
    path = write(tree, GOOD.replace("points: 6", "pointz: 6"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path) in msg and "assignments.hwx.parts.first.pointz: unknown key" in msg


def test_wrong_type_is_named(tree):
    with pytest.raises(ConfigError, match=r"assignments\.hwx\.parts\.first\.points: .*greater than 0"):
        load_config(write(tree, GOOD.replace("points: 6", "points: -1")))


def test_bad_runner_is_named(tree):
    with pytest.raises(ConfigError, match=r"parts\.second\.runner: Input should be 'cpu' or 'gpu'"):
        load_config(write(tree, GOOD.replace("runner: gpu", "runner: tpu")))


def test_pattern_matching_no_test_is_an_error(tree):
    with pytest.raises(ConfigError) as info:
        load_config(write(tree, GOOD.replace("test_first_*", "test_nothing_*")))
    msg = str(info.value)
    assert "assignments.hwx.parts.first.tests" in msg and "'test_nothing_*' matches no test" in msg


def test_missing_file_is_an_error(tree):
    with pytest.raises(ConfigError, match=r"assignments\.hwx\.files: solutions/hwx/nope\.py does not exist"):
        load_config(write(tree, GOOD.replace("[toy.py]", "[toy.py, nope.py]")))


def test_file_must_be_a_module_name(tree):
    with pytest.raises(ConfigError, match=r"files: .*expected a module file name"):
        load_config(write(tree, GOOD.replace("[toy.py]", "[sub/toy.py]")))


def test_part_name_must_be_a_marker_name(tree):
    with pytest.raises(ConfigError, match="part name 'gpu'"):
        load_config(write(tree, GOOD.replace("second:", "gpu:")))


def test_missing_required_key(tree):
    with pytest.raises(ConfigError, match=r"assignments\.hwx\.files: required key is missing"):
        load_config(write(tree, GOOD.replace("    files: [toy.py]\n", "")))


def test_not_yaml(tree):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tree, "assignments: [\n"))


def test_unknown_assignment(tree):
    course = load_config(write(tree, GOOD))
    with pytest.raises(ConfigError, match=r"no assignment 'hw9' \(expected one of: hwx\)"):
        course.assignment("hw9")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "grading.yml")


def test_course_config_is_valid(course):
    # The repository's own grading.yml, against the repository's own tree.
    course.check_tree()
    for a in course.assignments.values():
        assert sum(p.points for p in a.parts.values()) > 0


@pytest.mark.parametrize("entry", ["mlxtend", "/etc/passwd", "mlxtend/../..", "not-a-package/data"])
def test_hidden_package_data_must_name_a_folder_in_a_package(tree, entry):
    text = GOOD.replace("    files: [toy.py]\n", f"    files: [toy.py]\n    hidden_package_data: ['{entry}']\n")
    with pytest.raises(ConfigError, match=r"hidden_package_data.*expected 'package/folder'"):
        load_config(write(tree, text))


def test_hidden_package_data_resolves_installed_folders(tree):
    from autograder.sandbox import package_paths

    text = GOOD.replace("    files: [toy.py]\n", "    files: [toy.py]\n    hidden_package_data: [numpy/linalg]\n")
    a = load_config(write(tree, text)).assignment("hwx")
    assert a.hidden_package_data == ["numpy/linalg"]
    found = package_paths(a.hidden_package_data + ["no_such_package_here/data"])
    assert len(found) == 1 and found[0].parts[-2:] == ("numpy", "linalg")


def test_a_part_given_twice_is_an_error(tree):
    text = GOOD.replace("      second:", "      first: {points: 1, tests: [test_second]}\n      second:")
    with pytest.raises(ConfigError, match=r"the key 'first' is given twice \(first on line 7\)") as info:
        load_config(write(tree, text))
    assert "line 8" in str(info.value)


def test_an_assignment_given_twice_is_an_error(tree):
    block = GOOD.split("assignments:\n", 1)[1]
    with pytest.raises(ConfigError, match="the key 'hwx' is given twice"):
        load_config(write(tree, GOOD + block))


def test_two_parts_matching_one_test_is_an_error(tree):
    # test_second would count in `first` only, and `second` would share its points among
    # fewer tests than written: the reference would score 6 + 0 of 10 with no test failing.
    text = GOOD.replace("tests: [test_first_*]", "tests: [test_first_*, 'test_s*']")
    with pytest.raises(ConfigError) as info:
        load_config(write(tree, text))
    msg = str(info.value)
    assert "test test_second of test_toy.py is matched by the patterns of 2 parts" in msg
    assert "parts.first.tests: 'test_s*'" in msg and "parts.second.tests: 'test_toy.py::test_second'" in msg


def test_cli_reports_a_duplicate_key_with_exit_2(tree):
    import subprocess
    import sys

    path = write(tree, GOOD + GOOD.split("assignments:\n", 1)[1])
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tree), "-a", "hwx", "--config", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "is given twice" in run.stderr and "Traceback" not in run.stderr
