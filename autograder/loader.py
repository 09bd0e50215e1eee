"""Import an assignment's modules fresh, under their plain names, and leave no trace.

An assignment's modules import one another by plain name (``from layers import affine_forward``
in fc_net.py), and two assignments, or a submission and the reference, can both have a module
called ``layers``. So each load puts the directory first on sys.path, imports every module
under its plain name, keeps the module objects, and then restores sys.modules and sys.path as
they were. Module objects keep working afterwards: their own imports were bound at load time.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any


class StudentCodeError(AssertionError):
    """Student code could not be used: a missing file, an import error, a missing name."""


class InputChangedError(StudentCodeError):
    """A student function changed an array it was given, in place (raised only by the tests
    that grade that rule: autograder.verdicts.assert_inputs_unchanged)."""


class InputChangedWarning(UserWarning):
    """A student function wrote into an array it was given. Student code always works on
    copies, so nothing the test or the reference sees changes; the rule is graded once, by its
    own tests, and every other test shows this warning instead of failing."""


def input_changed_message(function: str, changed: list[tuple[str, tuple]]) -> str:
    """The words for a call that wrote into its input arrays: changed is (which argument,
    its shape) for each. The same words locally and in grading."""
    which = ", ".join(f"{arg} (shape {shape})" for arg, shape in changed)
    return (
        f"{function} changed the array it was given as {which} in place. Functions must not "
        "modify their input arrays (the caller still uses them): compute into new arrays, for "
        "example out = x * 2 rather than x *= 2, or work on x.copy()."
    )


def _copied(value: Any) -> Any:
    """An ndarray argument, or a tuple of them, as a private copy for student code."""
    import numpy as np

    if type(value) is np.ndarray:
        return value.copy()
    if type(value) is tuple:
        return tuple(_copied(v) for v in value)
    return value


def _arrays(value: Any, label: str) -> list[tuple[str, Any]]:
    import numpy as np

    if type(value) is np.ndarray:
        return [(label, value)]
    if type(value) is tuple:
        return [pair for i, v in enumerate(value) for pair in _arrays(v, f"{label}[{i}]")]
    return []


def _guarded(fn: Any) -> Any:
    """fn, called with private copies of the numpy arrays it is passed (directly or in a
    tuple), warning (InputChangedWarning) when it writes into one. Arrays inside dicts and
    lists are state, such as bn_param's running mean, and are passed as they are."""
    import functools
    import warnings

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # a student's traceback goes from the test to their code
        args = tuple(_copied(a) for a in args)
        kwargs = {k: _copied(v) for k, v in kwargs.items()}
        given = [pair for i, a in enumerate(args) for pair in _arrays(a, f"argument {i + 1}")]
        given += [pair for k, a in kwargs.items() for pair in _arrays(a, f"argument {k}=")]
        before = [(name, a, a.shape, a.dtype, a.tobytes()) for name, a in given]
        result = fn(*args, **kwargs)
        changed = [(name, shape) for name, a, shape, dtype, data in before
                   if a.shape != shape or a.dtype != dtype or a.tobytes() != data]
        if changed:
            warnings.warn(InputChangedWarning(input_changed_message(f"{fn.__qualname__}()", changed)),
                          stacklevel=2)
        return result

    return call


@dataclass
class LoadedModules:
    """The result of loading one directory's modules.

    modules: name -> module, for those that imported. errors: name -> a message saying why
    that module could not be used (missing file, error on import, with the traceback).
    """

    directory: Path
    names: list[str]
    modules: dict[str, ModuleType] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _trimmed_traceback(exc: BaseException, directory: Path) -> str:
    """The traceback of exc, keeping only frames from files inside directory."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).parent == directory
    ]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


_CODE: dict[Path, tuple[bytes, Any]] = {}  # path -> (source bytes, code object)

COLD_ENV = "DEEPGRADE_COLD"


def cold_start() -> bool:
    """DEEPGRADE_COLD=1: grade the way deepgrade did before its start-up costs were cut (every
    module compiled on every import, every pytest plugin loaded, a fresh pytest per
    submission). For benchmarks (benchmarks/bench_batch.py) and to rule the speed-ups out
    when chasing a problem; grades are the same either way."""
    return os.environ.get(COLD_ENV, "") not in ("", "0")


def _compiled(path: Path) -> Any:
    """The code object of the module file at `path`, compiled as the import system does (a
    SyntaxError is raised the same way). A fresh import per test costs one compile per
    distinct source, not one per test: the file is read each time and the code reused while
    its bytes are unchanged."""
    source = path.read_bytes()
    cached = _CODE.get(path)
    if cached is None or cached[0] != source or cold_start():
        if len(_CODE) >= 256:  # an audit loads hundreds of mutants, each once: keep memory flat
            _CODE.clear()
        cached = _CODE[path] = (source, compile(source, str(path), "exec", dont_inherit=True))
    return cached[1]


def load_modules(directory: Path, names: list[str]) -> LoadedModules:
    """Import the modules `names` (without .py) from `directory`, fresh.

    Returns LoadedModules; a module that is missing or fails to import is recorded in
    .errors and does not stop the others. sys.modules and sys.path are left as they were.
    """
    directory = Path(directory).resolve()
    result = LoadedModules(directory=directory, names=list(names))
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(directory))
    try:
        for name in names:
            path = directory / f"{name}.py"
            if name in sys.modules:  # imported already by a sibling's `import name`
                result.modules[name] = sys.modules[name]
                continue
            if not path.is_file():
                result.errors[name] = f"{name}.py is missing"
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                exec(_compiled(path), module.__dict__)  # noqa: S102 - as exec_module does
            except BaseException as exc:  # noqa: BLE001 - any failure of student code is reported
                sys.modules.pop(name, None)
                result.errors[name] = (
                    f"{name}.py raised {type(exc).__name__} while being imported:\n"
                    + _trimmed_traceback(exc, directory)
                )
                continue
            result.modules[name] = module
        # A module that failed part-way may have been imported by a sibling first; only the
        # ones that finished are kept.
        for name in list(result.modules):
            if name in result.errors:
                del result.modules[name]
    finally:
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
        try:
            sys.path.remove(str(directory))
        except ValueError:
            pass
    return result


class ModuleNamespace:
    """One object through which tests reach an assignment's modules.

    ``ns.affine_forward`` looks the name up in each module, in the order grading.yml lists the
    files. A name found nowhere raises StudentCodeError that says which modules could not be
    imported and why, so a test fails with the real cause.
    """

    def __init__(self, loaded: LoadedModules, label: str = "submission", guard_inputs: bool = False) -> None:
        object.__setattr__(self, "_loaded", loaded)
        object.__setattr__(self, "_label", label)
        # Student code works on copies of the arrays it is given (as in grading, where the
        # worker's arrays are its own); a write into one is a warning, graded by its own test.
        object.__setattr__(self, "_guard", guard_inputs)

    def __getattr__(self, name: str) -> Any:
        __tracebackhide__ = True  # the failure is the student's missing name, not this lookup
        if name.startswith("__"):
            raise AttributeError(name)
        loaded: LoadedModules = self._loaded
        for mod_name in loaded.names:
            module = loaded.modules.get(mod_name)
            if module is not None and hasattr(module, name):
                value = getattr(module, name)
                if self._guard and isinstance(value, FunctionType):
                    return _guarded(value)
                return value
        if loaded.errors:
            problems = "\n\n".join(loaded.errors.values())
            raise StudentCodeError(f"cannot use `{name}` from the {self._label}:\n{problems}")
        files = ", ".join(f"{n}.py" for n in loaded.names)
        raise StudentCodeError(f"the {self._label} does not define `{name}` (looked in {files})")

    def __dir__(self) -> list[str]:
        out: set[str] = set()
        for module in self._loaded.modules.values():
            out.update(n for n in vars(module) if not n.startswith("_"))
        return sorted(out)

    def __repr__(self) -> str:
        return f"<{self._label}: {', '.join(self._loaded.names)} from {self._loaded.directory}>"
