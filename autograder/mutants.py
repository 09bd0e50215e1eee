"""Automatic mutants of a reference module, made from its syntax tree.

A mutant is the reference with one small change of the kind students make: an operator
swapped (``+`` for ``-``, ``<`` for ``<=``), an index off by one, a constant changed, a term
dropped (``a + b`` becomes ``a``, an augmented assignment removed, a transpose or a minus sign
lost), a flag flipped. Only lines inside ``### BEGIN SOLUTION`` blocks are mutated: the rest is
the skeleton the student is given and never writes.

Each change is made on the source text at the node's position, so a mutant's diff against the
reference is one or two lines and the rest of the file (comments included) is unchanged.
Whether a mutant is *equivalent* (behaves as the reference does) is decided by running it, in
autograder.audit; this module only makes them.
"""
from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

_BEGIN = "### BEGIN SOLUTION"
_END = "### END SOLUTION"

# Binary operator swaps: the usual confusions, one replacement each.
_BINOP_SWAP = {
    ast.Add: (ast.Sub, "+", "-"),
    ast.Sub: (ast.Add, "-", "+"),
    ast.Mult: (ast.Div, "*", "/"),
    ast.Div: (ast.Mult, "/", "*"),
    ast.FloorDiv: (ast.Div, "//", "/"),
    ast.Pow: (ast.Mult, "**", "*"),
    ast.MatMult: (ast.Mult, "@", "*"),
}
_CMP_SWAP = {
    ast.Lt: ("<", "<="),
    ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="),
    ast.GtE: (">=", ">"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
}
# Calls whose swap is a typical slip: the reduction or the extreme taken the wrong way.
_CALL_SWAP = {"max": "min", "min": "max", "argmax": "argmin", "argmin": "argmax",
              "sum": "mean", "mean": "sum", "maximum": "minimum", "minimum": "maximum"}


@dataclass(frozen=True)
class Mutant:
    """One mutated copy of a module.

    id: "file:line:col:kind" (unique within an assignment); file: the module's file name;
    function: the qualified name of the enclosing function ("FullyConnectedNet.loss");
    line: 1-based line of the change; kind: the operator (swap-op, swap-cmp, constant,
    off-by-one, drop-term, drop-stmt, drop-unary, drop-transpose, swap-call, flip-bool);
    description: the change in words ("`+` -> `-`"); source: the whole mutated module.
    """

    id: str
    file: str
    function: str
    line: int
    kind: str
    description: str
    source: str
    original: str

    @property
    def diff(self) -> str:
        """A unified diff of the reference against this mutant (a few lines)."""
        return "".join(difflib.unified_diff(
            self.original.splitlines(keepends=True), self.source.splitlines(keepends=True),
            fromfile=f"reference/{self.file}", tofile=f"mutant/{self.file}", n=1,
        ))


def solution_lines(source: str) -> set[int]:
    """The 1-based line numbers strictly inside ### BEGIN/END SOLUTION blocks."""
    inside, lines = False, set()
    for no, text in enumerate(source.splitlines(), start=1):
        stripped = text.strip()
        if stripped.startswith(_BEGIN):
            inside = True
        elif stripped.startswith(_END):
            inside = False
        elif inside:
            lines.add(no)
    return lines


class _Text:
    """The module's text with (line, column) positions from the AST turned into offsets.

    The AST gives columns in UTF-8 bytes; a comment with a non-ASCII character before a node on
    the same line would shift a character offset, so each line is measured in bytes first.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + len(self.lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node: ast.AST) -> str:
        a, b = self.span(node)
        return self.source[a:b]

    def replace(self, start: int, end: int, new: str) -> str:
        return self.source[:start] + new + self.source[end:]


def _paren(text: str) -> str:
    return f"({text})"


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """(qualified name, function node) for every function and method, outermost first."""
    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
    yield from walk(tree, "")


def _own_nodes(func: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's body, without those of functions defined inside it."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _swap_operator(text: _Text, left: ast.AST, right: ast.AST, old: str, new: str) -> str | None:
    """Replace the operator token `old` between two operands (parentheses may sit there too)."""
    a = text.offset(left.end_lineno, left.end_col_offset)
    b = text.offset(right.lineno, right.col_offset)
    gap = text.source[a:b]
    # The token alone: `*` must not match inside `**`, `<` not inside `<=`.
    pattern = r"(?<![*/<>=!@])" + re.escape(old) + r"(?![*/<>=])"
    m = re.search(pattern, gap)
    if m is None:
        return None
    return text.replace(a + m.start(), a + m.end(), new)


def _mutations(text: _Text, node: ast.AST, docstrings: set[int]) -> Iterator[tuple[str, str, str, int, int]]:
    """(kind, description, mutated source, line, col) for every change of one node."""
    pos = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
        _, old, new = _BINOP_SWAP[type(node.op)]
        src = _swap_operator(text, node.left, node.right, old, new)
        if src is not None and isinstance(node.op, ast.Pow):
            # `c / a ** 2` must become `c / (a * 2)`: `*` binds less tightly than `**`.
            a, b = text.span(node)
            end = b + len(src) - len(text.source)
            src = src[:a] + "(" + src[a:end] + ")" + src[end:]
        if src is not None:
            yield "swap-op", f"`{old}` -> `{new}`", src, *pos
        if isinstance(node.op, (ast.Add, ast.Sub)):
            a, b = text.span(node)
            yield "drop-term", f"`{text.segment(node)}` -> `{text.segment(node.left)}`", \
                text.replace(a, b, _paren(text.segment(node.left))), *pos
        if isinstance(node.op, (ast.Mult, ast.Div)) and not isinstance(node.right, ast.Constant):
            a, b = text.span(node)
            yield "drop-term", f"`{text.segment(node)}` -> `{text.segment(node.left)}`", \
                text.replace(a, b, _paren(text.segment(node.left))), *pos
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP_SWAP:
        old, new = _CMP_SWAP[type(node.ops[0])]
        src = _swap_operator(text, node.left, node.comparators[0], old, new)
        if src is not None:
            yield "swap-cmp", f"`{old}` -> `{new}`", src, *pos
    elif isinstance(node, ast.Constant) and id(node) not in docstrings:
        value = node.value
        if isinstance(value, bool):
            a, b = text.span(node)
            yield "flip-bool", f"`{value}` -> `{not value}`", text.replace(a, b, str(not value)), *pos
        elif isinstance(value, int):
            a, b = text.span(node)
            yield "constant", f"`{value}` -> `{value + 1}`", text.replace(a, b, str(value + 1)), *pos
        elif isinstance(value, float):
            new = value * 2 if value != 0 else 1.0
            a, b = text.span(node)
            yield "constant", f"`{text.segment(node)}` -> `{new!r}`", text.replace(a, b, repr(new)), *pos
    elif isinstance(node, ast.Subscript):
        bounds = []
        sl = node.slice
        parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        for part in parts:
            if isinstance(part, ast.Slice):
                bounds += [b for b in (part.lower, part.upper) if b is not None]
            elif isinstance(part, (ast.Name, ast.BinOp)):
                bounds.append(part)
        for bound in bounds:
            if isinstance(bound, ast.Constant):
                continue  # a constant index is already changed by the `constant` mutation
            a, b = text.span(bound)
            seg = text.segment(bound)
            yield "off-by-one", f"`{seg}` -> `{seg} + 1`", text.replace(a, b, _paren(f"{seg} + 1")), \
                bound.lineno, bound.col_offset
    elif isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = text.span(node)
        yield "drop-stmt", f"`{text.segment(node)}` removed", text.replace(a, b, "pass"), *pos
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        a, b = text.span(node)
        yield "drop-unary", f"`{text.segment(node)}` -> `{text.segment(node.operand)}`", \
            text.replace(a, b, _paren(text.segment(node.operand))), *pos
    elif isinstance(node, ast.Attribute) and node.attr == "T" and isinstance(node.ctx, ast.Load):
        a, b = text.span(node)
        yield "drop-transpose", f"`{text.segment(node)}` -> `{text.segment(node.value)}`", \
            text.replace(a, b, _paren(text.segment(node.value))), *pos
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _CALL_SWAP:
            new = _CALL_SWAP[name]
            if isinstance(func, ast.Attribute):
                end = text.offset(func.end_lineno, func.end_col_offset)
                start = end - len(name)
            else:
                start, end = text.span(func)
            if text.source[start:end] == name:
                yield "swap-call", f"`{name}(...)` -> `{new}(...)`", text.replace(start, end, new), *pos


def _docstring_nodes(tree: ast.Module) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def make_mutants(source: str, file: str, skip_functions: tuple[str, ...] = ()) -> list[Mutant]:
    """Every mutant of `source` (the text of the module `file`) inside its solution blocks.

    skip_functions: qualified names (or fnmatch patterns) of functions left alone. Mutants
    that do not compile, and duplicates (two changes giving the same text), are dropped.
    Returns mutants in source order.
    """
    import fnmatch

    tree = ast.parse(source)
    editable = solution_lines(source)
    docstrings = _docstring_nodes(tree)
    text = _Text(source)
    seen: set[str] = {source}
    out: list[Mutant] = []
    for qualname, func in _functions(tree):
        if any(fnmatch.fnmatchcase(qualname, p) for p in skip_functions):
            continue
        nodes = sorted(_own_nodes(func), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
        for node in nodes:
            first = getattr(node, "lineno", None)
            if first is None or first not in editable or node.end_lineno not in editable:
                continue
            for kind, description, mutated, line, col in _mutations(text, node, docstrings):
                if mutated in seen:
                    continue
                try:
                    compile(mutated, file, "exec")
                except SyntaxError:
                    continue
                seen.add(mutated)
                out.append(Mutant(
                    id=f"{file}:{line}:{col}:{kind}", file=file, function=qualname, line=line,
                    kind=kind, description=description, source=mutated, original=source,
                ))
    # Two mutations of one kind at one place (a Sub dropped from either side) need unique ids.
    counts: dict[str, int] = {}
    unique = []
    for m in out:
        n = counts.get(m.id, 0)
        counts[m.id] = n + 1
        unique.append(m if n == 0 else Mutant(**{**m.__dict__, "id": f"{m.id}.{n}"}))
    return unique


def enclosing_function(source: str, line: int) -> str | None:
    """The qualified name of the innermost function containing 1-based `line`, or None."""
    best = None
    for qualname, func in _functions(ast.parse(source)):
        if func.lineno <= line <= func.end_lineno:
            best = qualname  # later entries are nested deeper
    return best
