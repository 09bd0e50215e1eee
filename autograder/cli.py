"""The `deepgrade` command: thin wrappers over the engine's modules.

Exit status: 0 when the command did its job (a low score is still a job done), 1 when a check
it was asked for failed (verify, release --check), 2 for a usage or configuration error.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from autograder.config import ConfigError, CourseConfig, load_config
from autograder.release import ReleaseError, diff_release, write_release
from autograder.runner import RunnerError
from autograder.submission import SubmissionError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _course(config: str | None) -> CourseConfig:
    return load_config(config, check_tree=False)


def _names(course: CourseConfig, names: tuple[str, ...]) -> list[str]:
    for n in names:
        course.assignment(n)  # raises ConfigError naming the known ones
    return list(names) or list(course.assignments)


class _Group(click.Group):
    """Turns the engine's expected errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ConfigError, ReleaseError, SubmissionError, RunnerError) as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            sys.exit(2)


config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None,
    help="grading.yml (default: the nearest one in this folder or above)",
)


@click.group(cls=_Group)
@click.version_option(package_name="deepgrade")
def main() -> None:
    """deepgrade: release, verify and grade deep-learning assignments."""


@main.command()
@click.argument("assignments", nargs=-1)
@click.option("--check", is_flag=True, help="change nothing; exit 1 and list the files that differ")
@config_option
def release(assignments: tuple[str, ...], check: bool, config: str | None) -> None:
    """Regenerate assignments/hwN from solutions/hwN (all assignments by default)."""
    course = _course(config)
    names = _names(course, assignments)
    course.check_tree(names)
    drift = []
    for name in names:
        a = course.assignment(name)
        if check:
            diffs = diff_release(a)
            drift += diffs
            console.print(f"{name}: {'in sync' if not diffs else f'{len(diffs)} file(s) differ'}")
        else:
            changes = write_release(a)
            console.print(f"{name}: {len(changes)} file(s) written or removed" if changes else f"{name}: up to date")
    for line in drift:
        console.print(f"  {line}")
    if drift:
        console.print("run `deepgrade release` to regenerate the student release")
        sys.exit(1)


@main.command()
@click.argument("assignments", nargs=-1)
@config_option
def verify(assignments: tuple[str, ...], config: str | None) -> None:
    """Prove the references pass, the stubs fail every graded test, and nothing leaks."""
    from autograder.verify import verify as run_verify

    course = _course(config)
    names = _names(course, assignments)
    course.check_tree(names)
    failed = False
    for name in names:
        report = run_verify(course.assignment(name))
        console.print(f"[bold]{name}[/bold]: {'[green]ok[/green]' if report.passed else '[red]FAILED[/red]'}")
        for line in report.ok:
            console.print(f"  ok       {line}")
        for line in report.unverified:
            console.print(f"  not run  {line}")
        for line in report.problems:
            console.print(f"  [red]problem[/red]  {line}")
        failed |= not report.passed
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("submission", type=click.Path(exists=False))
@click.option("-a", "--assignment", required=True, help="assignment name in grading.yml, e.g. hw1")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="write Gradescope results.json here")
@click.option("-m", "select", default=None, help="grade only the tests of these parts (a pytest -m expression)")
@click.option("-q", "--quiet", is_flag=True, help="no table; just the score")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="also write JUnit XML here")
@click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="also write a Markdown summary here")
@click.option("--runner", type=click.Choice(["cpu", "gpu", "all"]), default=None,
              help="the parts to grade here: cpu (GPU parts deferred), gpu (only the GPU parts) or "
              "all; default: all, with the GPU parts deferred when this machine has no CUDA device")
@config_option
def grade(submission: str, assignment: str, output: str | None, select: str | None, quiet: bool,
          junit: str | None, markdown: str | None, runner: str | None, config: str | None) -> None:
    """Grade SUBMISSION (a folder or .zip) against the hidden and visible tests."""
    from autograder.grade import grade as run_grade
    from autograder.reports import print_table

    course = _course(config)
    a = course.assignment(assignment)
    if runner == "gpu":
        from autograder.plugin import _cuda_available

        if not _cuda_available():
            raise RunnerError("--runner gpu: this machine has no CUDA device (torch.cuda.is_available() "
                              "is False); grade here with --runner cpu and merge with a GPU run")
    result = run_grade(course, a, Path(submission), Path(output) if output else None, select=select,
                       runner=runner or "all")
    card = result.scorecard
    if quiet:
        console.print(f"{card.score:.2f} / {card.max_score:g}")
    else:
        print_table(card, console)
        for line in result.results["output"].splitlines()[len(card.parts) + 1 :]:
            console.print(line)
    _write_formats(result.results, junit, markdown)
    if output:
        console.print(f"results written to {output}")


def _write_formats(results: dict, junit: str | None, markdown: str | None) -> None:
    from autograder.formats import write_junit, write_markdown

    if junit:
        write_junit(junit, results)
    if markdown:
        write_markdown(markdown, results)


@main.command()
@click.argument("assignment")
@click.option("-m", "select", default=None, help="only these parts (a pytest -m expression)")
@config_option
def check(assignment: str, select: str | None, config: str | None) -> None:
    """Run the visible tests on your code in assignments/ and print a score table."""
    import tempfile

    from autograder.reports import print_table
    from autograder.runner import run_tests
    from autograder.scoring import score

    course = _course(config)
    a = course.assignment(assignment)
    tests = sorted(a.release_dir.glob("test_*.py"))
    if not tests:
        raise ConfigError(f"no visible tests in {a.release_dir}")
    with tempfile.TemporaryDirectory(prefix="deepgrade-check-") as tmp:
        run = run_tests(a, Path(tmp), submission=a.release_dir, select=select, tests=tests)
    print_table(score(a, run.outcomes), console)
    console.print("visible tests only: the hidden tests grade more cases")


@main.command()
@click.argument("cpu_results", type=click.Path(dir_okay=False))
@click.argument("gpu_results", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="write the merged results.json here")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="also write JUnit XML here")
@click.option("--markdown", type=click.Path(dir_okay=False), default=None, help="also write a Markdown summary here")
def merge(cpu_results: str, gpu_results: str, output: str, junit: str | None, markdown: str | None) -> None:
    """Fill the GPU tests a CPU run deferred with their results from a GPU run."""
    from autograder.merge import MergeError, merge_files
    from autograder.reports import write_json

    try:
        merged = merge_files(Path(cpu_results), Path(gpu_results))
    except MergeError as exc:
        raise click.UsageError(str(exc)) from None
    write_json(output, merged)
    _write_formats(merged, junit, markdown)
    max_score = merged["extra_data"].get("max_score", 0)
    console.print(f"{merged['score']:.2f} / {max_score:g}; merged results written to {output}")


@main.command()
@click.argument("assignment")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="the autograder zip (default: ASSIGNMENT-autograder.zip)")
@config_option
def gradescope(assignment: str, output: str | None, config: str | None) -> None:
    """Build the Gradescope autograder zip of ASSIGNMENT (setup.sh, run_autograder, tests)."""
    from autograder.exports.gradescope import build_autograder

    course = _course(config)
    a = course.assignment(assignment)
    out = Path(output or f"{a.name}-autograder.zip")
    members = build_autograder(course, a, out)
    console.print(f"{out}: {len(members)} files; upload it as the autograder of {a.name}")


class _Shard(click.ParamType):
    name = "i/n"

    def convert(self, value, param, ctx):
        from autograder.batch import BatchError, parse_shard

        try:
            return parse_shard(value) if isinstance(value, str) else value
        except BatchError as exc:
            self.fail(str(exc), param, ctx)


@main.command("grade-batch")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-a", "--assignment", default=None,
              help="assignment name (default: the name of DIRECTORY, e.g. submissions/hw1)")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True,
              help="folder for OUT/<student>/results.json, gradebook.csv, summary.md")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="submissions graded at once")
@click.option("--shard", type=_Shard(), default="1/1", show_default=True, help="grade only shard i of n (1-based)")
@click.option("-m", "select", default=None, help="grade only the tests of these parts (a pytest -m expression)")
@click.option("--regrade", is_flag=True, help="grade everyone again, even those already graded")
@click.option("--no-progress", is_flag=True, help="no progress bar")
@config_option
def grade_batch(directory: str, assignment: str | None, output: str, jobs: int, shard: tuple[int, int],
                select: str | None, regrade: bool, no_progress: bool, config: str | None) -> None:
    """Grade every submission in DIRECTORY (one folder or .zip per student) into OUTPUT.

    Resumable: a rerun skips students already graded and retries those whose grading failed.
    Exit status 1 when grading failed for some student (rerun to retry them)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from autograder.batch import BatchError, run_batch

    course = _course(config)
    a = course.assignment(assignment or Path(directory).resolve().name)
    columns = (TextColumn(f"grading {a.name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=no_progress) as bar:
        task = bar.add_task("grade", total=None)
        try:
            report = run_batch(course, a, Path(directory), Path(output), jobs=jobs, shard=shard,
                               select=select, regrade=regrade, on_start=lambda n: bar.update(task, total=n),
                               on_progress=lambda name, state: bar.advance(task))
        except BatchError as exc:
            raise click.UsageError(str(exc)) from None
    for line in report.lines(a.name):
        console.print(line, markup=False)
    sys.exit(1 if report.failed else 0)


@main.command()
@click.argument("assignment")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="the zip to write (default: ASSIGNMENT-submission.zip)")
@config_option
def submit(assignment: str, output: str | None, config: str | None) -> None:
    """Zip exactly the graded files of assignments/ASSIGNMENT, with a manifest of their hashes."""
    from autograder.submit import build_submission

    course = _course(config)
    report = build_submission(course.assignment(assignment), Path(output) if output else None)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"{report.path}: {', '.join(report.files)} and manifest.json; upload this file")


@main.command()
@click.argument("assignment")
@click.option("--mutants/--no-mutants", default=True, show_default=True, help="also grade automatic mutants of the reference")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="write the full report here (.md, or .html)")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=2, show_default=True, help="mutants graded at once")
@click.option("--sample", type=click.IntRange(min=1), default=None, help="grade only this many mutants, drawn with --seed")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of --sample")
@config_option
def audit(assignment: str, mutants: bool, report_path: str | None, jobs: int, sample: int | None,
          seed: int, config: str | None) -> None:
    """How many catalogued bugs and automatic mutants do ASSIGNMENT's tests catch?

    Exit status 1 when a catalogued bug gets through."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.audit import AuditError, print_summary, run_audit, write_report

    course = _course(config)
    a = course.assignment(assignment)
    course.check_tree([a.name])
    columns = (TextColumn(f"auditing {a.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("audit", total=None)
        try:
            report = run_audit(a, mutants=mutants, jobs=jobs, sample=sample, seed=seed,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
        except AuditError as exc:
            raise click.UsageError(str(exc)) from None
    print_summary(report, console)
    if report_path:
        write_report(report, Path(report_path))
        console.print(f"report written to {report_path}")
    caught, total = report.catalog_caught()
    sys.exit(0 if caught == total else 1)


@main.group()
def export() -> None:
    """Export assignments to other graders (nbgrader, otter-grader)."""


@export.command("nbgrader")
@click.argument("course_dir", type=click.Path(file_okay=False))
@click.argument("assignments", nargs=-1)
@click.option("--course-id", default="deepgrade", show_default=True, help="nbgrader's course id")
@config_option
def export_nbgrader_cmd(course_dir: str, assignments: tuple[str, ...], course_id: str,
                        config: str | None) -> None:
    """Write an nbgrader course into COURSE_DIR (all assignments by default)."""
    from autograder.exports.nbgrader import export_nbgrader

    course = _course(config)
    names = _names(course, assignments)
    files = export_nbgrader(course, names, Path(course_dir), course_id=course_id)
    console.print(f"{course_dir}: {len(files)} files; next: cd {course_dir} && "
                  f"nbgrader generate_assignment {names[0]}")


@export.command("otter")
@click.argument("assignment")
@click.argument("directory", type=click.Path(file_okay=False))
@config_option
def export_otter_cmd(assignment: str, directory: str, config: str | None) -> None:
    """Write otter-grader test files for ASSIGNMENT into DIRECTORY (see its README.md)."""
    from autograder.exports.otter import export_otter, generate_command

    course = _course(config)
    a = course.assignment(assignment)
    files = export_otter(course, a, Path(directory))
    console.print(f"{directory}: {len(files)} files; next: cd {directory} && {generate_command(a)}")


if __name__ == "__main__":
    main()
