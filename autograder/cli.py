"""The `deepgrade` command: thin wrappers over the engine's modules.

Exit status: 0 when the command did its job (a low score is still a job done), 1 when a check
it was asked for failed (verify, release --check, a visible test in `check`), 2 for a usage or
configuration error.

Everything printed that comes from users or libraries (paths, test ids, error messages) is
escaped: rich would read "[instructor]" or "[/bold]" in it as markup.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from autograder.config import ConfigError, CourseConfig, load_config, natural_order
from autograder.exports import ExportError
from autograder.release import ReleaseError, diff_release, write_release
from autograder.grade import OutputError
from autograder.runner import InfrastructureError, RunnerError
from autograder.submission import SubmissionError


def _console(stderr: bool = False) -> Console:
    """A console that never wraps what it prints (soft_wrap). When the output is not a terminal
    (a CI log, a file) rich would lay out at 80 columns; tables get room to keep names whole,
    unless COLUMNS says otherwise."""
    out = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 200
    return out


console = _console()
err_console = _console(stderr=True)


def _course(config: str | None) -> CourseConfig:
    return load_config(config, check_tree=False)


def _names(course: CourseConfig, names: tuple[str, ...]) -> list[str]:
    """The assignments named (in the order given), or all of them in their natural order."""
    for n in names:
        course.assignment(n)  # raises ConfigError naming the known ones
    return list(names) or natural_order(course.assignments)


class _Group(click.Group):
    """Turns the engine's expected errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (ConfigError, ReleaseError, SubmissionError, RunnerError, ExportError, OutputError) as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            sys.exit(2)
        except InfrastructureError as exc:  # not the submission's doing, nor a usage error: rerun
            err_console.print(f"[red]error:[/red] {escape(str(exc))}")
            sys.exit(1)


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
    """Regenerate assignments/hwN from solutions/hwN (all assignments by default, in order).

    Names each file written or removed (with --check: each file that differs) under its
    assignment."""
    course = _course(config)
    names = _names(course, assignments)
    course.check_tree(names)
    drift = []
    for name in names:
        a = course.assignment(name)
        if check:
            lines = diff_release(a)
            drift += lines
            summary = "in sync" if not lines else f"{len(lines)} file(s) differ"
        else:
            lines = write_release(a)
            summary = f"{len(lines)} file(s) written or removed" if lines else "up to date"
        console.print(escape(f"{name}: {summary}"))
        for line in lines:
            console.print(escape(f"  {line}"))
    if drift:
        console.print("run `deepgrade release` to regenerate the student release")
        sys.exit(1)


@main.command()
@click.argument("assignments", nargs=-1)
@click.option("--published", type=click.Path(file_okay=False), default=None,
              help="instead, check a student repository written by `deepgrade publish` for leaks")
@config_option
def verify(assignments: tuple[str, ...], published: str | None, config: str | None) -> None:
    """Prove the references pass, the stubs fail every graded test, and nothing leaks.

    With --published DIR: prove that DIR (engine wheel included) holds no solution, hidden
    test, reference code, bug catalog, quiz answer, notebook output or solutions/ path."""
    from autograder.verify import find_published_leaks, verify as run_verify

    course = _course(config)
    if published is not None:
        if assignments:
            raise click.UsageError("--published checks DIR against every assignment: give no ASSIGNMENTS")
        sys.exit(_leak_lines(find_published_leaks(course, Path(published)), published))
    names = _names(course, assignments)
    course.check_tree(names)
    failed = False
    for name in names:
        report = run_verify(course.assignment(name))
        console.print(f"[bold]{escape(name)}[/bold]: {'[green]ok[/green]' if report.passed else '[red]FAILED[/red]'}")
        for line in report.ok:
            console.print(f"  ok       {escape(line)}")
        for line in report.unverified:
            console.print(f"  not run  {escape(line)}")
        for line in report.problems:
            console.print(f"  [red]problem[/red]  {escape(line)}")
        failed |= not report.passed
    sys.exit(1 if failed else 0)


def _leak_lines(report, folder: str) -> int:
    """Print a leak check's verdict; returns the exit status (1: leaks)."""
    if not report.problems:
        console.print(f"leak check of {escape(folder)}: [green]ok[/green] ({report.files} files read, "
                      f"{report.members} of them inside the engine wheel)")
        return 0
    console.print(f"leak check of {escape(folder)}: [red]FAILED[/red]")
    for line in report.problems:
        console.print(f"  [red]leak[/red]  {escape(line)}")
    return 1


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--assignments", "only", default=None, metavar="hw1,hw2",
              help="publish these (comma-separated), besides those published there before")
@click.option("--through", default=None, metavar="hwN",
              help="publish every assignment up to this one, in order (hw1, hw2, ..., hw10)")
@click.option("--ci", is_flag=True, help="also write the student autograde workflow from ci-templates/")
@config_option
def publish(directory: str, only: str | None, through: str | None, ci: bool, config: str | None) -> None:
    """Write the student repository into DIRECTORY: the released assignments, the engine wheel,
    a grading.yml of what students may see, a README and a .gitignore; then check it for leaks.

    A rerun adds assignments and keeps whatever changed there since it was published. Exit
    status 1 when the leak check fails (nothing new is written when the new content leaks)."""
    from autograder.publish import PublishError, publish as run_publish, select

    course = _course(config)
    try:
        names = select(course, [n.strip() for n in only.split(",") if n.strip()] if only else None, through)
        report = run_publish(course, Path(directory), names, ci=ci)
    except PublishError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(2)
    if report.blocked:
        console.print("nothing written: the new content would leak", markup=False)
        sys.exit(_leak_lines(report.leaks, "the new content"))
    console.print(f"{directory}: {', '.join(report.assignments)}; {len(report.written)} file(s) written, "
                  f"{report.unchanged} unchanged, {len(report.removed)} removed", markup=False)
    console.print(f"  engine: {report.wheel} ({'built' if report.wheel_built else 'unchanged'})", markup=False)
    for rel in report.kept:
        console.print(f"  kept     {rel} (changed since it was published; delete it to take the new one)",
                      markup=False)
    for rel in report.removed:
        console.print(f"  removed  {rel}", markup=False)
    status = _leak_lines(report.leaks, directory)
    if not status and (report.written or report.removed):
        console.print(f"next: cd {directory} && git add -A && git commit -m 'Publish {report.assignments[-1]}' "
                      "&& git push", markup=False)
    sys.exit(status)


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
    from autograder.grade import check_output_file
    from autograder.grade import grade as run_grade
    from autograder.reports import print_table

    course = _course(config)
    a = course.assignment(assignment)
    for option, path in (("-o", output), ("--junit", junit), ("--markdown", markdown)):
        if path:
            check_output_file(path, option)  # before grading, not after it
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
            console.print(line, markup=False)
    _write_formats(result.results, junit, markdown)
    if output:
        console.print(f"results written to {output}", markup=False)


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
    """Run the visible tests on your code in assignments/ and print a score table, then each
    failing test (with its parameters) and why it failed.

    Exit status 1 when a visible test fails, as pytest's."""
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
    card = score(a, run.outcomes)
    reason = f"not selected by -m {select}" if select else "no visible tests: the hidden tests grade them"
    print_table(card, console, only_run=True, not_run_reason=reason)
    console.print("visible tests only: the hidden tests grade more cases")
    # A skip is no failure: a quiz question with no local check is skipped once answered.
    sys.exit(1 if any(o.status in ("failed", "error") for o in run.outcomes) else 0)


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
    console.print(f"{merged['score']:.2f} / {max_score:g}; merged results written to {output}", markup=False)


@main.command()
@click.option("--gpu", is_flag=True, help="check a GPU runner: CUDA in a sandboxed worker and the data are required")
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON instead of a table")
@config_option
def doctor(gpu: bool, as_json: bool, config: str | None) -> None:
    """Check what a grading runner needs on this machine: the sandbox, torch and the NVIDIA
    driver, the device nodes and libraries, CUDA in a sandboxed worker, the data directory.

    One line per check (ok, info, warn or fail) with its fix. Exit status 1 when a required
    check fails (with --gpu, a GPU runner's checks are required)."""
    import json

    from autograder import doctor as doc

    try:
        course = _course(config)
    except ConfigError as exc:
        err_console.print(f"[yellow]warning:[/yellow] {escape(str(exc))}; the course checks are skipped")
        course = None
    checks = doc.run_checks(course, gpu)
    if as_json:
        click.echo(json.dumps(doc.as_json(checks, gpu), indent=2))
    else:
        doc.print_report(checks, gpu, console)
    sys.exit(doc.exit_status(checks))


@main.command()
@click.argument("assignment")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="the autograder zip (default: ASSIGNMENT-autograder.zip)")
@config_option
def gradescope(assignment: str, output: str | None, config: str | None) -> None:
    """Build the Gradescope autograder zip of ASSIGNMENT (setup.sh, run_autograder, tests)."""
    from autograder.exports.gradescope import BASE_IMAGES, SUPPORTED_PYTHONS, build_autograder

    course = _course(config)
    a = course.assignment(assignment)
    out = Path(output or f"{a.name}-autograder.zip")
    members = build_autograder(course, a, out)
    console.print(f"{out}: {len(members)} files; upload it as the autograder of {a.name}", markup=False)
    console.print(f"base image: {BASE_IMAGES} (setup.sh installs on Python {SUPPORTED_PYTHONS[0]} "
                  f"to {SUPPORTED_PYTHONS[-1]})", markup=False)


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
@click.option("--gather-only", is_flag=True,
              help="grade no one: write the gradebook from what OUTPUT holds and name the students without a grade")
@config_option
def grade_batch(directory: str, assignment: str | None, output: str, jobs: int, shard: tuple[int, int],
                select: str | None, regrade: bool, no_progress: bool, gather_only: bool, config: str | None) -> None:
    """Grade every submission in DIRECTORY (one folder or .zip per student) into OUTPUT.

    Resumable: a rerun skips students already graded and retries those whose grading failed.
    Exit status 1 when grading failed for some student (rerun to retry them), or, with
    --gather-only, when some student has no grade (they are listed on stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from autograder.batch import BatchError, gather_batch, run_batch

    course = _course(config)
    a = course.assignment(assignment or Path(directory).resolve().name)
    if gather_only:
        if shard != (1, 1) or regrade:
            raise click.UsageError("--gather-only grades no one: it takes neither --shard nor --regrade")
        try:
            gathered = gather_batch(a, Path(directory), Path(output), select=select)
        except BatchError as exc:
            raise click.UsageError(str(exc)) from None
        for line in gathered.lines(a.name):
            console.print(line, markup=False)
        for line in gathered.missing_lines():
            err_console.print(line, markup=False)
        sys.exit(1 if gathered.missing else 0)
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


def _instructor_tools() -> None:
    """report and similar need the instructor extra; say so instead of an ImportError."""
    import importlib.util

    missing = [m for m in ("jinja2", "copydetect", "scipy") if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"this command needs {', '.join(missing)}: "
                                   "pip install 'deepgrade[instructor]' (or pip install -e \".[instructor]\")")


@main.command()
@click.argument("graded_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              help="the HTML file to write (one self-contained page)")
@click.option("-a", "--assignment", default=None, help="assignment name (default: the one the results name)")
@click.option("-s", "--submissions", type=click.Path(file_okay=False), default=None,
              help="the submissions folder that was graded: adds the similarity screen")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="processes for the similarity screen")
@config_option
def report(graded_dir: str, output: str, assignment: str | None, submissions: str | None, jobs: int,
           config: str | None) -> None:
    """Write the class report of GRADED_DIR (the -o folder of grade-batch): score distributions,
    diagnoses, common errors, item analysis, each student's feedback, and with --submissions the
    similarity screen."""
    _instructor_tools()
    from autograder.classreport import ReportError, assignment_of, build_report, load_class, write_report
    from autograder.similarity import SimilarityError, screen_folder

    course = _course(config)
    try:
        a = assignment_of(load_class(Path(graded_dir)), course, assignment)
        sim = screen_folder(Path(submissions), a, jobs=jobs) if submissions else None
        html = build_report(course, Path(graded_dir), a.name, similarity=sim)
    except (ReportError, SimilarityError) as exc:
        raise click.UsageError(str(exc)) from None
    write_report(Path(output), html)
    console.print(f"class report written to {output} ({len(html.encode()) / 1e6:.1f} MB)", markup=False)


@main.command()
@click.argument("submissions", type=click.Path(file_okay=False))
@click.option("-a", "--assignment", default=None,
              help="assignment name (default: the name of SUBMISSIONS, e.g. submissions/hw1)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="also write an HTML page with the matching code side by side")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="flag pairs from this score (default 0.4: see autograder/similarity.py)")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="pairs listed beyond the flagged")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="processes that tokenize")
@config_option
def similar(submissions: str, assignment: str | None, output: str | None, threshold: float | None, top: int,
            jobs: int, config: str | None) -> None:
    """Screen the submissions of SUBMISSIONS (one folder or .zip per student, as grade-batch
    reads them) for pairs that share unusually much code, the released stub excluded.

    A score is evidence for a human to review, never a verdict."""
    _instructor_tools()
    from autograder.formats import write_text_atomic
    from autograder.similarity import THRESHOLD, SimilarityError, screen_folder, side_by_side_html

    course = _course(config)
    a = course.assignment(assignment or Path(submissions).resolve().name)
    try:
        result = screen_folder(Path(submissions), a, threshold=THRESHOLD if threshold is None else threshold,
                               top=top, jobs=jobs)
    except SimilarityError as exc:
        raise click.UsageError(str(exc)) from None
    for line in result.lines():
        console.print(line, markup=False)
    if output:
        write_text_atomic(Path(output), side_by_side_html(result))
        console.print(f"side-by-side page written to {output}", markup=False)


@main.command()
@click.argument("assignment")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="the zip to write (default: handin/ASSIGNMENT-submission.zip beside grading.yml, "
              "a folder git ignores)")
@config_option
def submit(assignment: str, output: str | None, config: str | None) -> None:
    """Zip exactly the graded files of assignments/ASSIGNMENT, with a manifest of their hashes,
    and print where the zip is."""
    from autograder.submit import build_submission

    course = _course(config)
    report = build_submission(course.assignment(assignment), Path(output) if output else None)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    console.print(f"wrote {report.path}", markup=False)
    console.print(f"  {', '.join(report.files)} and manifest.json; upload this file", markup=False)


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
    """How many catalogued bugs and automatic mutants do ASSIGNMENT's tests catch, does each bug
    cost points only in its own parts, and does each correct variant get exactly its points?

    Exit status 1 when a catalogued bug gets through or costs points outside its parts, or a
    correct variant does not lose exactly what its entry states."""
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
        console.print(f"report written to {report_path}", markup=False)
    sys.exit(0 if report.holds else 1)


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
    # nbgrader knows an assignment by its folder under source/, which is grading.yml's path.
    console.print(f"{course_dir}: {len(files)} files; next: cd {course_dir} && pip install -r requirements.txt "
                  f"&& nbgrader generate_assignment {course.assignment(names[0]).path}", markup=False)


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
    console.print(f"{directory}: {len(files)} files; next: cd {directory} && {generate_command(a)}",
                  markup=False)


if __name__ == "__main__":
    main()
