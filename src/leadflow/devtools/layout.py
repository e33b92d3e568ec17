"""Layout check: no module over the line limit, no import cycle among leadflow's own modules.

    python -m leadflow.devtools.layout [--max-lines 600] [--json] [--root DIR]

Exit 0 when clean, 1 with a list of what is wrong, 2 on a usage error. `--json` prints the same report for machines.
`--root` checks another package directory (default: the imported `leadflow` package, i.e. src/leadflow). The
allowlists below apply only to a package named `leadflow` at the default limit (they were recorded against it).

Sizes. A module (any .py file under the root) with more lines than `--max-lines` (counted as `wc -l` does) fails,
unless it is allowlisted: SPLITTING_NOW (being split today: allowed at any size) or PENDING_SPLITS (allowed up to
its recorded count; growing past it fails, and so does an entry whose file is gone or back under the limit).

Import cycles. The graph of imports among the root package's modules is read with `ast` (nothing is imported):
`import leadflow.x`, `from leadflow.x import y` (an edge to leadflow.x.y when that is a module, else to leadflow.x)
and relative imports. Importing leadflow.x.y also runs leadflow/x/__init__.py; that implied edge is not counted,
or every package whose `__init__` re-exports its submodules would be a cycle. Every import statement counts,
wherever it is, and is labelled by where it is:

- "top-level": runs when the module is imported (also inside a class body, `try:` or a plain `if`);
- "deferred": inside a function, runs at the first call. This is how a cycle is usually hidden, so it still
  counts: the issue's example config ↔ stages.score was exactly such a hidden cycle;
- "type-checking": under `if TYPE_CHECKING:`, never runs, but the two modules still cannot be type-checked,
  understood or moved apart one without the other.

So a cycle is reported whatever kinds of import make it up; each elementary cycle is printed once, as a path
a → b → a starting at its alphabetically first module, with the file, line and kind of every import on it.
KNOWN_CYCLES lists cycles allowed for now (reported as "known", not failed on); an entry whose cycle is gone fails,
like a stale PENDING_SPLITS entry, so a fixed cycle cannot come back unnoticed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

MAX_LINES: Final[int] = 600

# Being split right now by other engineers (issue 15): allowed at any size until then; remove when done. (synth.py,
# routing.py and store/store.py were on this list too; their splits have landed.) Paths relative to src/leadflow.
SPLITTING_NOW: Final[frozenset[str]] = frozenset()

# Being split in issue 15; remove when done. Over the limit when this check came and nobody splits them yet: each is
# allowed up to its recorded line count and fails when it grows past it. Split one into modules under the limit, then
# delete its entry (the check fails on an entry whose file is gone or under the limit: a slot left in the list could
# fill up again unnoticed).
PENDING_SPLITS: Final[dict[str, int]] = {
}

# Import cycles allowed for now, each as the modules it goes through (any rotation).
KNOWN_CYCLES: Final[tuple[tuple[str, ...], ...]] = ()

TOP_LEVEL: Final[str] = "top-level"
DEFERRED: Final[str] = "deferred"
TYPE_CHECKING_ONLY: Final[str] = "type-checking"
_RANK: Final[dict[str, int]] = {TOP_LEVEL: 0, DEFERRED: 1, TYPE_CHECKING_ONLY: 2}

MAX_CYCLES: Final[int] = 200
"""Cycles listed per tangle (strongly connected group of modules) before the listing stops."""
_STEP_BUDGET: Final[int] = 200_000


@dataclass(frozen=True)
class ImportSite:
    """One import statement that makes `source` depend on `target`."""

    source: str
    target: str
    kind: str
    path: str
    """The importing file, relative to the root's parent (`leadflow/config.py`)."""
    line: int
    statement: str


@dataclass(frozen=True)
class Cycle:
    modules: tuple[str, ...]
    """a, b, … : the cycle a → b → … → a, starting at its alphabetically first module."""
    edges: tuple[ImportSite, ...]
    known: bool = False

    def path(self) -> str:
        return " → ".join((*self.modules, self.modules[0]))


@dataclass(frozen=True)
class BigModule:
    path: str
    """Relative to the root (`connectors/salesforce.py`): the key the allowlists use."""
    lines: int
    status: str
    """"over" (fails), "grew" (a pending split past its recorded count: fails), "pending" or "splitting"."""
    allowed: int | None = None


@dataclass
class Report:
    root: str
    package: str
    max_lines: int
    modules: int = 0
    big: list[BigModule] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Other failures: a stale PENDING_SPLITS entry, a file that does not parse, a cycle listing cut short."""
    notes: list[str] = field(default_factory=list)

    @property
    def failing_big(self) -> list[BigModule]:
        return [m for m in self.big if m.status in ("over", "grew")]

    @property
    def new_cycles(self) -> list[Cycle]:
        return [c for c in self.cycles if not c.known]

    @property
    def ok(self) -> bool:
        return not (self.failing_big or self.new_cycles or self.problems)


# ------------------------------------------------------------------------------------------------------ modules


def discover(root: Path) -> dict[str, Path]:
    """Module name → file for every .py file under `root` (the package directory)."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if "__pycache__" in relative.parts:
            continue
        parts = [root.name, *relative.parts[:-1]]
        if path.stem != "__init__":
            parts.append(path.stem)
        modules[".".join(parts)] = path
    return modules


def count_lines(path: Path) -> int:
    """Lines as `wc -l` counts them, plus a last line without a newline."""
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, str]] = []
        self._functions = 0
        self._typing = 0

    def _kind(self) -> str:
        return TYPE_CHECKING_ONLY if self._typing else DEFERRED if self._functions else TOP_LEVEL

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._functions += 1
        self.generic_visit(node)
        self._functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self._typing += 1
        for statement in node.body:
            self.visit(statement)
        self._typing -= 1
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append((node, self._kind()))

    visit_ImportFrom = visit_Import


def _resolve(name: str, modules: Collection[str]) -> str | None:
    """The module `name` loads, or its closest enclosing module; None when outside the package."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(parts) - 1:
        return None  # above the root package
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _shorten(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def import_sites(module: str, path: Path, modules: Mapping[str, Path], root: Path) -> list[ImportSite]:
    """Every import in `module` of another module of the package (raises SyntaxError)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    finder = _ImportFinder()
    finder.visit(tree)
    shown = path.relative_to(root.parent).as_posix()
    package = root.name
    sites: list[ImportSite] = []

    def add(target: str | None, kind: str, line: int, statement: str) -> None:
        if target is not None and target != module:
            sites.append(ImportSite(module, target, kind, shown, line, _shorten(statement)))

    for node, kind in finder.found:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    add(_resolve(alias.name, modules), kind, node.lineno, f"import {alias.name}")
            continue
        base = _absolute(module, path.stem == "__init__", node)
        if base is None or not (base == package or base.startswith(package + ".")):
            continue
        written = "." * node.level + (node.module or "")
        by_target: dict[str, list[str]] = {}
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            target = submodule if submodule in modules else _resolve(base, modules)
            if target is not None:
                by_target.setdefault(target, []).append(alias.name)
        for target, names in by_target.items():
            add(target, kind, node.lineno, f"from {written} import {', '.join(names)}")
    return sites


# ------------------------------------------------------------------------------------------------------ cycles


def _components(graph: Mapping[str, Collection[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return groups


def _elementary_cycles(group: set[str], graph: Mapping[str, Collection[str]]) -> tuple[list[tuple[str, ...]], bool]:
    """Every simple cycle inside `group`, each once (from its smallest module); True when cut short."""
    cycles: list[tuple[str, ...]] = []
    steps = 0
    for start in sorted(group):
        later = {m for m in group if m > start}
        path, on_path = [start], {start}
        work = [iter(sorted(set(graph[start]) & later))]
        while work:
            nxt = next(work[-1], None)
            if nxt is None:
                work.pop()
                on_path.discard(path.pop())
                continue
            steps += 1
            if steps > _STEP_BUDGET or len(cycles) >= MAX_CYCLES:
                return cycles, True
            if nxt in on_path:
                continue
            path.append(nxt)
            on_path.add(nxt)
            following = set(graph.get(nxt, ()))
            if start in following:
                cycles.append(tuple(path))
            work.append(iter(sorted(following & later)))
    return cycles, False


def canonical(cycle: Sequence[str]) -> tuple[str, ...]:
    """The rotation of a cycle that starts at its smallest module."""
    i = min(range(len(cycle)), key=lambda k: cycle[k])
    return tuple(cycle[i:]) + tuple(cycle[:i])


def find_cycles(sites: Iterable[ImportSite], known: Iterable[Sequence[str]] = ()) -> tuple[list[Cycle], list[str]]:
    """The import cycles among `sites`, shortest first, and the tangles whose listing was cut short."""
    edges: dict[tuple[str, str], ImportSite] = {}
    for site in sites:
        key = (site.source, site.target)
        best = edges.get(key)
        if best is None or (_RANK[site.kind], site.line) < (_RANK[best.kind], best.line):
            edges[key] = site  # the strongest import of the pair: top-level over deferred over type-checking
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    allowed = {canonical(c) for c in known if c}
    cycles: list[Cycle] = []
    cut: list[str] = []
    for group in _components(graph):
        found, truncated = _elementary_cycles(group, graph)
        if truncated:
            cut.append(", ".join(sorted(group)))
        for modules in found:
            hops = tuple(edges[(a, modules[(i + 1) % len(modules)])] for i, a in enumerate(modules))
            cycles.append(Cycle(modules, hops, known=modules in allowed))
    cycles.sort(key=lambda c: (len(c.modules), c.modules))
    return cycles, cut


# ------------------------------------------------------------------------------------------------------ the check


def check(
    root: Path,
    max_lines: int = MAX_LINES,
    splitting_now: Collection[str] = (),
    pending: Mapping[str, int] | None = None,
    known_cycles: Iterable[Sequence[str]] = (),
) -> Report:
    """Check the package directory `root` (allowlists empty unless given)."""
    pending = dict(pending or {})
    report = Report(root=str(root), package=root.name, max_lines=max_lines)
    modules = discover(root)
    report.modules = len(modules)
    sites: list[ImportSite] = []
    for module, path in modules.items():
        key = path.relative_to(root).as_posix()
        lines = count_lines(path)
        if key in splitting_now:
            if lines > max_lines:
                report.big.append(BigModule(key, lines, "splitting"))
            else:
                report.notes.append(f"{key} is {lines} lines now: remove it from SPLITTING_NOW")
        elif key in pending:
            if lines <= max_lines:
                report.problems.append(f"{key} is {lines} lines now, within the limit: remove it from PENDING_SPLITS")
            else:
                status = "grew" if lines > pending[key] else "pending"
                report.big.append(BigModule(key, lines, status, pending[key]))
                if lines < pending[key]:
                    report.notes.append(f"{key} shrank to {lines} lines: lower its PENDING_SPLITS count")
        elif lines > max_lines:
            report.big.append(BigModule(key, lines, "over"))
        try:
            sites += import_sites(module, path, modules, root)
        except (SyntaxError, ValueError) as exc:
            report.problems.append(f"{key} does not parse: {exc}")
    present = {path.relative_to(root).as_posix() for path in modules.values()}
    for key in sorted(set(pending) - present):
        report.problems.append(f"{key} is gone: remove it from PENDING_SPLITS")
    for key in sorted(set(splitting_now) - present):
        report.notes.append(f"{key} is gone (split?): remove it from SPLITTING_NOW")
    report.big.sort(key=lambda m: (m.status in ("pending", "splitting"), -m.lines))
    known = [tuple(c) for c in known_cycles]
    report.cycles, cut = find_cycles(sites, known)
    found = {c.modules for c in report.cycles}
    for cycle in known:
        if canonical(cycle) not in found:
            report.problems.append(f"known cycle {' → '.join((*cycle, cycle[0]))} is gone: remove it from "
                                   "KNOWN_CYCLES")
    for group in cut:
        report.problems.append(f"more than {MAX_CYCLES} cycles among {group}; the listing stops there")
    return report


def _shown(report: Report, relative: str) -> str:
    path = Path(report.root).parent / relative
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def format_text(report: Report) -> str:
    lines = [f"layout check of {_shown(report, report.package)}: {report.modules} modules, limit {report.max_lines} "
             "lines"]
    if report.failing_big:
        lines.append(f"FAIL: {len(report.failing_big)} module(s) over {report.max_lines} lines:")
        for m in report.failing_big:
            extra = f" (PENDING_SPLITS allows {m.allowed}: it grew)" if m.status == "grew" else ""
            lines.append(f"  {_shown(report, f'{report.package}/{m.path}')}: {m.lines} lines{extra}")
    if report.new_cycles:
        lines.append(f"FAIL: {len(report.new_cycles)} import cycle(s):")
        lines += _cycle_lines(report, report.new_cycles)
    for problem in report.problems:
        lines.append(f"FAIL: {problem}")
    allowed = [m for m in report.big if m.status in ("pending", "splitting")]
    if allowed:
        lines.append("allowed for now (over the limit):")
        for m in allowed:
            why = "splitting (issue 15)" if m.status == "splitting" else f"pending (PENDING_SPLITS: {m.allowed})"
            lines.append(f"  {m.path}: {m.lines} lines, {why}")
    known = [c for c in report.cycles if c.known]
    if known:
        lines.append("known cycles (KNOWN_CYCLES):")
        lines += _cycle_lines(report, known)
    lines += [f"note: {note}" for note in report.notes]
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)


def _cycle_lines(report: Report, cycles: Iterable[Cycle]) -> list[str]:
    out: list[str] = []
    for cycle in cycles:
        out.append(f"  {cycle.path()}")
        for site in cycle.edges:
            label = "" if site.kind == TOP_LEVEL else f"  [{site.kind}]"
            out.append(f"      {_shown(report, site.path)}:{site.line}: {site.statement}{label}")
    return out


def to_json(report: Report) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "root": report.root,
        "max_lines": report.max_lines,
        "modules": report.modules,
        "big_modules": [asdict(m) for m in report.big],
        "cycles": [{"path": list(c.modules), "known": c.known, "imports": [asdict(s) for s in c.edges]}
                   for c in report.cycles],
        "problems": report.problems,
        "notes": report.notes,
    }


def _default_root() -> Path:
    import leadflow

    return Path(leadflow.__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leadflow.devtools.layout",
                                     description="Fail on a module over the line limit or an import cycle.")
    parser.add_argument("--max-lines", type=int, default=MAX_LINES, help=f"line limit per module (default {MAX_LINES})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--root", type=Path, default=None, help="package directory (default: the leadflow package)")
    args = parser.parse_args(argv)
    root = (args.root or _default_root()).resolve()
    if not (root / "__init__.py").is_file():
        print(f"layout: {root} is not a package directory (no __init__.py)", file=sys.stderr)
        return 2
    if args.max_lines < 1:
        print("layout: --max-lines must be at least 1", file=sys.stderr)
        return 2
    lists: dict[str, Any] = {}
    if root.name == "leadflow" and args.max_lines == MAX_LINES:  # the allowlists were recorded against this limit
        lists = {"splitting_now": SPLITTING_NOW, "pending": PENDING_SPLITS, "known_cycles": KNOWN_CYCLES}
    report = check(root, args.max_lines, **lists)
    try:
        print(json.dumps(to_json(report), indent=2, ensure_ascii=False) if args.json else format_text(report))
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader left; the exit status still tells
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush does not fail again
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
