"""Hostile and broken archives: the grader reads each one within flat memory, and a broken file
costs the student that file (with the reason), never the grade of the rest or a traceback.

The zips are built byte by byte (archives.py), so that their headers can lie about sizes. The
bombs are read in a child process limited to 512 MB of address space: a grader that trusted
the declared sizes (or let zipfile inflate a member whole) would die there of MemoryError.
How much memory each archive costs is measured in benchmarks/bench_hostile_archives.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import jsonschema
import pytest

from autograder.config import load_config
from autograder.submission import MAX_ENTRIES, SubmissionError, collect

from . import archives as A
from .conftest import SCHEMA

GOOD = "def f(x):\n    return 2 * x\n"
TESTS = "def test_f(student):\n    assert student.f(2) == 4\n\ndef test_g(student):\n    assert student.g() == 1\n"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A toy course: layers.py (graded, test_f) and helpers.py (graded, test_g); files over
    1 MB are refused."""
    root = tmp_path_factory.mktemp("archives")
    sol = root / "solutions" / "hwz"
    sol.mkdir(parents=True)
    (sol / "layers.py").write_text(GOOD)
    (sol / "helpers.py").write_text("def g():\n    return 1\n")
    (sol / "test_z.py").write_text(TESTS)
    (root / "grading.yml").write_text(textwrap.dedent("""
        assignments:
          hwz:
            title: Zips
            files: [layers.py, helpers.py]
            limits: {file_size_mb: 1}
            parts:
              f: {points: 1, tests: [test_f]}
              g: {points: 1, tests: [test_g]}
    """))
    return load_config(root / "grading.yml")


HELPERS = A.stored("helpers.py", "def g():\n    return 1\n")


def collect_in_child(course, archive: Path, dest: Path, address_space_mb: int = 512) -> dict:
    """collect() in a child process whose address space is limited: (found, missing, problems)."""
    code = textwrap.dedent(f"""
        import json, resource
        resource.setrlimit(resource.RLIMIT_AS, ({address_space_mb} << 20, {address_space_mb} << 20))
        from autograder.config import load_config
        from autograder.submission import collect
        a = load_config({str(course.path)!r}).assignment("hwz")
        s = collect({str(archive)!r}, a, __import__("pathlib").Path({str(dest)!r}))
        print(json.dumps({{"found": s.found, "missing": s.missing, "problems": s.problems}}))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["deflate", "bzip2", "lzma"])
@pytest.mark.parametrize("declared", [1000, None], ids=["lying", "honest"])
def test_a_zip_bomb_is_refused_within_flat_memory(course, tmp_path, method, declared):
    # 1 GB of deflate (1 MB of zip) or 64 MB of bzip2 / lzma (quick to make): far over the
    # 1 MB limit, and the deflate one over the child's whole address space.
    size = 1024 if method == zipfile.ZIP_DEFLATED else 64
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(A.build([A.bomb_member(method, size, declared), HELPERS]))
    got = collect_in_child(course, archive, tmp_path / "dest")
    assert got["missing"] == ["layers.py"] and got["found"] == {"helpers.py": "helpers.py"}
    assert any(p.startswith("layers.py: it is over the 1048576-byte limit once decompressed") for p in got["problems"])


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["deflate", "bzip2", "lzma"])
def test_corrupt_compressed_data_costs_that_file_only(course, tmp_path, method):
    archive = tmp_path / "corrupt.zip"
    archive.write_bytes(A.build([A.corrupt_member(method), HELPERS]))
    sub = collect(archive, course.assignment("hwz"), tmp_path / "dest")
    assert sub.missing == ["layers.py"] and sub.found == {"helpers.py": "helpers.py"}
    assert len(sub.problems) == 1 and sub.problems[0].startswith("layers.py: ")
    assert "corrupt" in sub.problems[0] or "ends too soon" in sub.problems[0]


def test_a_wrong_checksum_costs_that_file_only(course, tmp_path):
    archive = tmp_path / "crc.zip"
    archive.write_bytes(A.build([A.Member("layers.py", GOOD.encode(), crc=1234), HELPERS]))
    sub = collect(archive, course.assignment("hwz"), tmp_path / "dest")
    assert sub.missing == ["layers.py"]
    assert sub.problems == ["layers.py: its data does not match the zip's checksum or size (the zip is corrupt)"]


@pytest.mark.parametrize("member, reason", [
    (A.Member("layers.py", GOOD.encode(), flags=0x1), "it is encrypted"),
    (A.Member("layers.py", GOOD.encode(), method=98), "it is compressed with ppmd, which the grader does not read"),
    (A.Member("layers.py", b"\x78\x9c" + GOOD.encode(), method=zipfile.ZIP_DEFLATED, size=len(GOOD)),
     "corrupt data"),
])
def test_unreadable_members_are_named(course, tmp_path, member, reason):
    archive = tmp_path / "odd.zip"
    archive.write_bytes(A.build([member, HELPERS]))
    sub = collect(archive, course.assignment("hwz"), tmp_path / "dest")
    assert sub.missing == ["layers.py"] and reason in sub.problems[0], sub.problems


def test_a_corrupt_zip_gives_a_valid_results_json_not_a_traceback(course, tmp_path):
    archive = tmp_path / "corrupt.zip"
    archive.write_bytes(A.build([A.corrupt_member(zipfile.ZIP_DEFLATED), HELPERS]))
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(archive), "-a", "hwz", "-o", str(out),
                          "--config", str(course.path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == 1  # test_g, in helpers.py, still counts
    assert "note: layers.py: could not be read: corrupt data" in data["output"]
    assert "missing file: layers.py" in data["output"]


def test_too_many_entries_are_refused_before_they_are_read(course, tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(MAX_ENTRIES + 1):
            zf.writestr(f"{i}", b"")
    with pytest.raises(SubmissionError, match=f"lists {MAX_ENTRIES + 1} entries.*at most {MAX_ENTRIES}"):
        collect(archive, course.assignment("hwz"), tmp_path / "dest")


def test_duplicate_entries_are_noted(course, tmp_path):
    archive = tmp_path / "dup.zip"
    archive.write_bytes(A.build([A.stored("layers.py", "def f(x):\n    return 0\n"), A.stored("layers.py", GOOD),
                                 HELPERS]))
    sub = collect(archive, course.assignment("hwz"), tmp_path / "dest")
    assert sub.found == {"layers.py": "layers.py", "helpers.py": "helpers.py"}
    assert (tmp_path / "dest" / "layers.py").read_text() == GOOD
    assert sub.problems == ["the zip holds 2 copies of layers.py; graded the last of them"]


def test_symbolic_links_are_named_not_followed(course, tmp_path):
    # In a zip: a member whose mode is a link holds the link's target as its data.
    archive = tmp_path / "link.zip"
    archive.write_bytes(A.build([A.Member("layers.py", b"/etc/passwd", mode=0o120777), HELPERS]))
    sub = collect(archive, course.assignment("hwz"), tmp_path / "dest")
    assert sub.missing == ["layers.py"] and not (tmp_path / "dest" / "layers.py").exists()
    assert sub.problems == ["layers.py is a symbolic link, which is not graded: submit the file itself"]
    # In a folder.
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "helpers.py").write_text("def g():\n    return 1\n")
    os.symlink(course.assignment("hwz").solution_dir / "layers.py", folder / "layers.py")
    sub = collect(folder, course.assignment("hwz"), tmp_path / "dest2")
    assert sub.missing == ["layers.py"]
    assert sub.problems == ["layers.py is a symbolic link, which is not graded: submit the file itself"]


def test_member_names_cannot_escape(course, tmp_path):
    archive = tmp_path / "slip.zip"
    archive.write_bytes(A.build([A.stored("../../evil.py", "x"), A.stored("/abs/layers.py", GOOD), HELPERS]))
    sub = collect(archive, course.assignment("hwz"), tmp_path / "work" / "dest")
    assert sorted(p.name for p in (tmp_path / "work" / "dest").iterdir()) == ["helpers.py"]
    assert not (tmp_path / "evil.py").exists() and "../../evil.py" in sub.ignored
