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
@config_option
def grade(submission: str, assignment: str, output: str | None, select: str | None, quiet: bool, config: str | None) -> None:
    """Grade SUBMISSION (a folder or .zip) against the hidden and visible tests."""
    from autograder.grade import grade as run_grade
    from autograder.reports import print_table

    course = _course(config)
    a = course.assignment(assignment)
    result = run_grade(course, a, Path(submission), Path(output) if output else None, select=select)
    card = result.scorecard
    if quiet:
        console.print(f"{card.score:.2f} / {card.max_score:g}")
    else:
        print_table(card, console)
        for line in result.results["output"].splitlines()[len(card.parts) + 1 :]:
            console.print(line)
    if output:
        console.print(f"results written to {output}")


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


if __name__ == "__main__":
    main()
