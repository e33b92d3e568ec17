"""The layout check (`python -m leadflow.devtools.layout`): leadflow itself passes it, and the checker finds big
modules and import cycles (top-level, deferred, type-checking, relative) in small fake packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leadflow.devtools.layout import MAX_CYCLES, check, count_lines, format_text, main

SRC = Path(__file__).resolve().parents[1] / "src" / "leadflow"


def make(tmp_path: Path, files: dict[str, str], name: str = "pkg") -> Path:
    """A package `name` under tmp_path with these files (paths relative to the package)."""
    root = tmp_path / name
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def lines(n: int) -> str:
    return "".join(f"x{i} = {i}\n" for i in range(n))


# ------------------------------------------------------------------------------------------------ leadflow itself


def test_leadflow_has_no_big_module_or_import_cycle() -> None:
    """CI fails here on a new module over 600 lines, a pending split that grew, or a new import cycle."""
    run = subprocess.run([sys.executable, "-m", "leadflow.devtools.layout"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("OK")


def test_config_is_in_no_cycle() -> None:
    """The issue's example, config ↔ stages.score (hidden by a function-level import), is gone, allowlist or not."""
    report = check(SRC, known_cycles=())
    assert [c.path() for c in report.cycles if "leadflow.pipeline.config" in c.modules] == []


def test_config_states_the_score_stage_inputs() -> None:
    """config checks a scoring model against SCORING_INPUTS instead of importing stages.score: the same set."""
    from leadflow.pipeline.config import SCORING_INPUTS
    from leadflow.stages.score import READS

    assert SCORING_INPUTS == frozenset(READS)


# ------------------------------------------------------------------------------------------------ sizes


def test_big_module_found(tmp_path: Path) -> None:
    root = make(tmp_path, {"small.py": lines(600), "sub/big.py": lines(601)})
    report = check(root, max_lines=600)
    assert [(m.path, m.lines, m.status) for m in report.big] == [("sub/big.py", 601, "over")]
    assert not report.ok
    assert main(["--root", str(root)]) == 1
    assert main(["--root", str(root), "--max-lines", "601"]) == 0


def test_big_module_report_names_path_and_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, {"big.py": lines(700)})
    assert main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "big.py: 700 lines" in out and out.rstrip().endswith("FAILED")


def test_count_lines_like_wc(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"a\n\x0cb\r\nc")  # a form feed is no line break; a last line without a newline counts
    assert count_lines(path) == 3
    path.write_bytes(b"")
    assert count_lines(path) == 0


def test_pending_split_may_not_grow(tmp_path: Path) -> None:
    root = make(tmp_path, {"old.py": lines(650), "split_me.py": lines(700)})
    report = check(root, pending={"old.py": 650, "split_me.py": 690})
    assert {m.path: m.status for m in report.big} == {"old.py": "pending", "split_me.py": "grew"}
    assert not report.ok
    assert "allows 690: it grew" in format_text(report)
    assert check(root, pending={"old.py": 650, "split_me.py": 700}).ok


def test_pending_entry_of_a_split_file_fails(tmp_path: Path) -> None:
    root = make(tmp_path, {"done.py": lines(300)})
    report = check(root, pending={"done.py": 650, "gone.py": 700})
    assert not report.ok
    assert any("done.py is 300 lines" in p for p in report.problems)
    assert any("gone.py is gone" in p for p in report.problems)


def test_shrunk_pending_file_passes_with_a_note(tmp_path: Path) -> None:
    root = make(tmp_path, {"old.py": lines(620)})
    report = check(root, pending={"old.py": 650})
    assert report.ok and any("lower its PENDING_SPLITS count" in n for n in report.notes)


def test_file_being_split_is_allowed(tmp_path: Path) -> None:
    root = make(tmp_path, {"huge.py": lines(2000)})
    report = check(root, splitting_now={"huge.py"})
    assert report.ok and [m.status for m in report.big] == ["splitting"]
    assert "splitting" in format_text(report)


# ------------------------------------------------------------------------------------------------ cycles


def test_cycle_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, {"a.py": "from pkg.b import B\nA = 1\n", "b.py": "import pkg.a\nB = 2\n"})
    report = check(root)
    assert [c.path() for c in report.cycles] == ["pkg.a → pkg.b → pkg.a"]
    assert [(s.path, s.line, s.kind) for s in report.cycles[0].edges] == [
        ("pkg/a.py", 1, "top-level"), ("pkg/b.py", 1, "top-level")]
    assert main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 1 import cycle(s):" in out and "pkg.a → pkg.b → pkg.a" in out


def test_deferred_import_cycle_found_and_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shape of the issue's config ↔ stages.score: the import back sits in a function."""
    root = make(tmp_path, {
        "config.py": "def check():\n    from pkg.stages.score import READS\n    return READS\n",
        "stages/__init__.py": "",
        "stages/score.py": "from pkg.config import check\nREADS = ()\n",
    })
    report = check(root)
    assert [c.path() for c in report.cycles] == ["pkg.config → pkg.stages.score → pkg.config"]
    assert [s.kind for s in report.cycles[0].edges] == ["deferred", "top-level"]
    main(["--root", str(root)])
    assert "from pkg.stages.score import READS  [deferred]" in capsys.readouterr().out


def test_type_checking_import_cycle_found(tmp_path: Path) -> None:
    root = make(tmp_path, {
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\nelse:\n    pass\n",
        "b.py": "from pkg.a import x\n",
    })
    (cycle,) = check(root).cycles
    assert [s.kind for s in cycle.edges] == ["type-checking", "top-level"]


def test_relative_imports_resolved(tmp_path: Path) -> None:
    root = make(tmp_path, {
        "a.py": "from . import sub\n",                  # pkg.sub (a package)
        "sub/__init__.py": "from .x import X\n",        # pkg.sub.x
        "sub/x.py": "from ..b import B\nX = 1\n",       # pkg.b
        "b.py": "from .a import thing\nB = 1\n",        # pkg.a
    })
    (cycle,) = check(root).cycles
    assert cycle.modules == ("pkg.a", "pkg.sub", "pkg.sub.x", "pkg.b")


def test_each_cycle_once_and_every_cycle_listed(tmp_path: Path) -> None:
    root = make(tmp_path, {
        "a.py": "import pkg.b\n",
        "b.py": "import pkg.c\nimport pkg.a\n",
        "c.py": "def f():\n    import pkg.a\n",
    })
    report = check(root)
    assert [c.path() for c in report.cycles] == ["pkg.a → pkg.b → pkg.a", "pkg.a → pkg.b → pkg.c → pkg.a"]



def test_tangle_listing_stops_and_fails(tmp_path: Path) -> None:
    """Six modules all importing each other hold 409 cycles: the listing stops at MAX_CYCLES and says so."""
    names = "abcdef"
    root = make(tmp_path, {f"{n}.py": "".join(f"import pkg.{m}\n" for m in names if m != n) for n in names})
    report = check(root)
    assert len(report.cycles) == MAX_CYCLES
    assert report.problems == [f"more than {MAX_CYCLES} cycles among pkg.a, pkg.b, pkg.c, pkg.d, pkg.e, pkg.f; the "
                               "listing stops there"]

def test_package_reexporting_its_modules_is_no_cycle(tmp_path: Path) -> None:
    """Importing pkg.sub.x also runs pkg/sub/__init__.py; that implied edge is not counted."""
    root = make(tmp_path, {
        "sub/__init__.py": "from pkg.sub.x import X\nfrom pkg.sub.y import Y\n",
        "sub/x.py": "from pkg.sub.y import Y\nX = 1\n",
        "sub/y.py": "Y = 1\n",
        "user.py": "from pkg.sub import X\nfrom pkg import sub\n",
    })
    report = check(root)
    assert report.ok and report.cycles == []


def test_imports_of_other_packages_ignored(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.py": "import json\nfrom pkgextra import b\nimport pkg_other.a\n"})
    assert check(root).cycles == []


def test_known_cycle_allowed_in_any_rotation(tmp_path: Path) -> None:
    root = make(tmp_path, {"a.py": "import pkg.b\n", "b.py": "import pkg.c\n", "c.py": "import pkg.a\n"})
    report = check(root, known_cycles=[("pkg.b", "pkg.c", "pkg.a")])
    assert report.ok and [c.known for c in report.cycles] == [True]
    stale = check(root, known_cycles=[("pkg.b", "pkg.c", "pkg.a"), ("pkg.a", "pkg.c")])
    assert not stale.ok and stale.problems == ["known cycle pkg.a → pkg.c → pkg.a is gone: remove it from KNOWN_CYCLES"]


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path, {"a.py": "def f():\n    from pkg import b\n", "b.py": "from . import a\n",
                           "big.py": lines(11)})
    assert main(["--root", str(root), "--json", "--max-lines", "10"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["max_lines"] == 10
    assert [(m["path"], m["lines"], m["status"]) for m in data["big_modules"]] == [("big.py", 11, "over")]
    (cycle,) = data["cycles"]
    assert cycle["path"] == ["pkg.a", "pkg.b"] and cycle["known"] is False
    assert [(i["source"], i["target"], i["kind"], i["line"]) for i in cycle["imports"]] == [
        ("pkg.a", "pkg.b", "deferred", 2), ("pkg.b", "pkg.a", "top-level", 1)]


def test_unparsable_module_fails(tmp_path: Path) -> None:
    root = make(tmp_path, {"broken.py": "def f(:\n"})
    report = check(root)
    assert not report.ok and report.problems[0].startswith("broken.py does not parse")


def test_not_a_package_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a package directory" in err
