"""The CI templates in ci-templates/: each parses, has the jobs the course needs, and every
`deepgrade` command in it exists and accepts its flags (parsed by the command itself, not run)."""
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import yaml

from autograder.cli import main

TEMPLATES = Path(__file__).resolve().parent.parent / "ci-templates"
WORKFLOWS = sorted((TEMPLATES / "github").glob("*.yml"))
SCRIPTS = sorted((TEMPLATES / "slurm").glob("*.sbatch")) + sorted((TEMPLATES / "slurm").glob("*.sh"))
_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ">", ">>", "<"}


def load_workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def run_blocks(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def deepgrade_commands(script: str) -> list[list[str]]:
    """The argument lists of every `deepgrade ...` command in a shell script. Expressions and
    variables become '1' (a valid shard, job count or name), so that flag values still parse."""
    script = re.sub(r"\$\{\{.*?\}\}", "1", script)
    script = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", "1", script)
    script = script.replace("\\\n", " ")
    commands = []
    for line in script.splitlines():
        if line.strip().startswith("#") or "deepgrade" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token not in _OPERATORS:
                segment.append(token)
                continue
            while segment and (segment[0] in ("exec", "srun", "time") or "=" in segment[0]):
                segment.pop(0)
            if segment and Path(segment[0]).name == "deepgrade":
                commands.append(segment[1:])
            segment = []
    return commands


def all_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in WORKFLOWS:
        for block in run_blocks(load_workflow(path)):
            found += [(path.name, args) for args in deepgrade_commands(block)]
    for path in SCRIPTS:
        found += [(path.name, args) for args in deepgrade_commands(path.read_text())]
    return found


def test_the_templates_are_there():
    assert {p.name for p in WORKFLOWS} == {"student-autograde.yml", "instructor-batch.yml"}
    assert {p.name for p in SCRIPTS} == {"grade-shards.sbatch", "gradebook.sbatch", "submit.sh", "local-cluster.sh"}


@pytest.mark.parametrize("source, args", all_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_each_deepgrade_command_exists_and_accepts_its_flags(source, args):
    name, rest = args[0], args[1:]
    command = main.commands.get(name)
    assert command is not None, f"{source}: `deepgrade {name}` is not a command"
    try:
        command.make_context(name, list(rest))  # parses and converts every flag; runs nothing
    except click.ClickException as exc:
        pytest.fail(f"{source}: `deepgrade {' '.join(args)}`: {exc.format_message()}")


def test_the_templates_use_the_commands_they_document():
    used = {(source, args[0]) for source, args in all_commands()}
    assert {("student-autograde.yml", c) for c in ("grade", "merge")} <= used
    assert ("instructor-batch.yml", "grade-batch") in used
    assert {("grade-shards.sbatch", "grade-batch"), ("gradebook.sbatch", "grade-batch")} <= used


def test_the_command_parser_catches_a_bad_flag():
    # The check above is only worth something if a wrong flag fails it.
    (args,) = deepgrade_commands('deepgrade grade-batch "$DIR" -a hw1 -o out --shards 1/2')
    with pytest.raises(click.NoSuchOption):
        main.commands[args[0]].make_context(args[0], args[1:])


def test_student_workflow_grades_cpu_and_gpu_then_merges():
    wf = load_workflow(TEMPLATES / "github" / "student-autograde.yml")
    assert "push" in wf["on"]
    jobs = wf["jobs"]
    assert jobs["grade-gpu"]["runs-on"] == ["self-hosted", "gpu"]
    assert set(jobs["merge"]["needs"]) == {"grade-cpu", "grade-gpu"}
    assert wf["permissions"]["statuses"] == "write"
    steps = [s for job in jobs.values() for s in job["steps"]]
    uses = [s.get("uses", "") for s in steps]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout")]
    assert any("secrets.GRADER_TOKEN" in str(s.get("with", {}).get("token")) for s in checkouts)
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert any(u.startswith("actions/github-script") and "createCommitStatus" in s["with"]["script"]
               for u, s in zip(uses, steps))
    assert any("GITHUB_STEP_SUMMARY" in block for block in run_blocks(wf))
    gpu_args = [a for block in (s["run"] for s in jobs["grade-gpu"]["steps"] if "run" in s)
                for a in deepgrade_commands(block)]
    assert gpu_args and all("--runner" in a and a[a.index("--runner") + 1] == "gpu" for a in gpu_args)
    cpu_args = [a for block in (s["run"] for s in jobs["grade-cpu"]["steps"] if "run" in s)
                for a in deepgrade_commands(block)]
    assert cpu_args and all("--runner" in a and a[a.index("--runner") + 1] == "cpu" for a in cpu_args)


def test_batch_workflow_is_a_matrix_over_shards():
    wf = load_workflow(TEMPLATES / "github" / "instructor-batch.yml")
    shard_job = wf["jobs"]["shard"]
    assert len(shard_job["strategy"]["matrix"]["shard"]) > 1
    commands = [a for block in (s["run"] for s in shard_job["steps"] if "run" in s) for a in deepgrade_commands(block)]
    assert any("--shard" in a for a in commands)
    assert wf["jobs"]["gradebook"]["needs"] == "shard"


def test_slurm_array_passes_its_task_as_the_shard():
    text = (TEMPLATES / "slurm" / "grade-shards.sbatch").read_text()
    assert re.search(r"^#SBATCH --array=1-\d+$", text, re.M)
    # SHARDS first: a resubmitted task (--array=2) is an array of one.
    assert '--shard "${SLURM_ARRAY_TASK_ID}/${SHARDS:-$SLURM_ARRAY_TASK_COUNT}"' in text


def test_slurm_gradebook_gathers_and_grades_no_one():
    (args,) = deepgrade_commands((TEMPLATES / "slurm" / "gradebook.sbatch").read_text())
    assert args[0] == "grade-batch" and "--gather-only" in args


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(path, tmp_path):
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not installed (the dev extra installs it on x86-64 Linux)")
    config = tmp_path / "actionlint.yaml"
    config.write_text("self-hosted-runner:\n  labels: [gpu]\n")  # the GPU runner's own label
    proc = subprocess.run([binary, "-no-color", "-config-file", str(config), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_parse(path):
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(path):
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run([binary, "--shell=bash", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
