"""`routing graph`: the routing config as an SVG picture (leadflow.routing.graph, leadflow.cli.routing_graph)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from leadflow.cli.routing_graph import routing_graph
from leadflow.routing import DEFAULT_ROUTING, RoutingConfig, load_routing_config
from leadflow.routing.graph import (
    Box,
    build_routing_graph,
    layout_routing_graph,
    routing_graph_svg,
    text_width,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOT = Path("/tmp/leadflow-routing-graph.png")
LAPTOP_WIDTH = 1366

runner = CliRunner()


def cli() -> typer.Typer:
    """`routing graph` registered the way the lead engineer will: on a Typer group, as `graph`."""
    app = typer.Typer(add_completion=False)

    @app.callback()
    def routing() -> None:
        """Lead routing."""

    app.command("graph")(routing_graph)
    return app


def big_config() -> RoutingConfig:
    """A larger config with long and hostile names: 30 users, 6 pools, 12 territories, 16 rules of every action."""
    users = {f"005U{i:02d}": {"name": f"{'Maximilian-Alexander ' if i % 5 == 0 else ''}User Ö'Brien <{i}> & co"}
             for i in range(30)}
    users["005U29"]["active"] = False
    pools = {
        f"pool_{p}_{'wide_' * (p % 3)}team": {
            "members": [{"user": f"005U{(p * 5 + k) % 30:02d}", "weight": k + 1,
                         **({"daily_cap": 10 * (k + 1)} if k % 2 else {})} for k in range(5)],
            **({"overflow": {"queue": "review"}} if p % 2 else {}),
        }
        for p in range(6)
    }
    names = list(pools)
    pools[names[0]]["overflow"] = {"pool": names[1]}
    countries = ["US", "CA", "GB", "DE", "FR", "NL", "SE", "IT", "ES", "PL", "JP", "AU"]
    territories = [{"name": f"Territory {c} with a long name", "countries": countries[i:] or [c],
                    "segments": ["enterprise", "mid_market"][: 1 + i % 2], "pool": names[i % 6]}
                   for i, c in enumerate(countries)]
    actions: list[dict[str, Any]] = [
        {"hold": "a rather long reason to hold this lead for a person to look at, <with> & \"quotes\""},
        {"queue": "stewards"}, {"territory": True, "otherwise": {"queue": "review"}},
        {"account_owner": True, "otherwise": {"territory": True, "otherwise": {"assign_to": "005U03"}}},
        {"assign_to": "005U07", "otherwise": {"pool": names[2]}}, {"pool": names[4]},
    ]
    rules = [{"name": f"rule_{i:02d}_{'x' * (i % 4)}", "when": {"column": "grade", "in": ["A", "B", "C"][: 1 + i % 3]},
              **actions[i % len(actions)], **({"sla_minutes": 30 * i} if i % 2 else {})} for i in range(15)]
    rules.append({"name": "everything else", "queue": "review"})
    return RoutingConfig.model_validate({
        "version": "big-1", "users": users, "pools": pools, "territories": territories, "rules": rules,
        "queues": {"review": {"owner_id": "00G1", "name": "Review <all>"}, "stewards": {"owner_id": "00G2"}},
    })


def svg_boxes(svg: str) -> dict[str, tuple[Box, list[str]]]:
    """Each node's rectangle and texts, read back from the SVG (which must be well-formed XML)."""
    root = ET.fromstring(svg)
    out = {}
    for group in root.iter(f"{SVG_NS}g"):
        if "node" not in group.get("class", "").split():
            continue
        rect = group.find(f"{SVG_NS}rect")
        assert rect is not None
        box = Box(*(float(rect.get(k, "nan")) for k in ("x", "y", "width", "height")))
        out[group.get("data-node", "")] = (box, [t.text or "" for t in group.findall(f"{SVG_NS}text")])
    return out


def overlapping(boxes: dict[str, Box]) -> list[tuple[str, str]]:
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes.items(), 2) if ba.overlaps(bb)]


# --- the graph model -----------------------------------------------------------------------------------------------


def test_demo_config_gives_every_rule_pool_and_member() -> None:
    config = load_routing_config(DEFAULT_ROUTING)
    graph = build_routing_graph(config)
    rules = [n for n in graph.nodes if n.kind == "rule"]
    assert [n.title for n in rules] == [f"{i}. {r.name}" for i, r in enumerate(config.rules, start=1)]
    assert "if lead_source is Demo Request" in rules[2].lines
    assert rules[-1].lines[0] == "every other lead (fallback)"
    assert {n.title for n in graph.nodes if n.kind == "pool"} == {f"pool {p}" for p in config.pools}
    edges = {(e.source, e.target, e.style) for e in graph.edges}
    members = {(f"pool:{p}", f"user:{m.user}", "member") for p, pool in config.pools.items() for m in pool.members}
    assert members <= edges and len(members) == 9
    assert {e for e in edges if e[2] == "member"} == members
    for i, territory in enumerate(config.territories):
        assert ("lookup:territory", f"territory:{i}", "route") in edges
        assert (f"territory:{i}", f"pool:{territory.pool}", "route") in edges
    assert ("rule:7", "queue:inbound_review", "route") in edges  # the fallback
    assert ("rule:4", "account_owner", "route") in edges and ("rule:4", "lookup:territory", "otherwise") in edges
    assert ("pool:na_west_ae", "pool:na_east_ae", "overflow") in edges
    assert ("pool:smb_sdr", "hold:pool smb_sdr unavailable", "overflow") in edges  # the default overflow
    assert graph.node("pool:smb_sdr").lines[:4] == ("Grace Mbeki ×3 (75%),", "cap 400/day", "Devon Park ×1 (25%),",
                                                    "cap 50/day")
    assert "Hugo Weber ×1 (33%), inactive" in graph.node("pool:emea_ae").lines
    assert graph.node("user:0058c00000HugoQ").kind == "inactive_user"

    svg = routing_graph_svg(graph)
    drawn = svg_boxes(svg)
    assert set(drawn) == {n.id for n in graph.nodes}
    texts = [t for _, lines in drawn.values() for t in lines]
    for name in [r.name for r in config.rules] + list(config.pools) + [u.name for u in config.users.values()]:
        assert any(name in t for t in texts), name
    assert svg.count('class="edge member"') == len(members)
    assert svg.count('class="edge overflow"') == len(config.pools)  # na_west_ae → na_east_ae drawn beside its column


@pytest.mark.parametrize("which", ["demo", "big"])
def test_boxes_never_overlap_and_columns_run_left_to_right(which: str) -> None:
    config = load_routing_config(DEFAULT_ROUTING) if which == "demo" else big_config()
    graph = build_routing_graph(config)
    layout = layout_routing_graph(graph)
    drawn = {k: box for k, (box, _) in svg_boxes(routing_graph_svg(graph, layout)).items()}
    assert len(drawn) == len(graph.nodes)
    assert overlapping(drawn) == []
    # the gaps edges pass through stay clear of every box too
    assert overlapping({**drawn, **layout.gaps}) == []
    for node in graph.nodes:  # every line fits its box
        box = drawn[node.id]
        assert max(text_width(x) for x in node.lines or ("",)) + 20 <= box.w + 0.1
        assert max(text_width(x, bold=True) for x in node.title_lines) + 20 <= box.w + 0.1
        assert "".join(node.title_lines).replace(" ", "") == node.title.replace(" ", "")
        assert box.y + box.h < layout.legend_y
    lefts = {kind: {drawn[n.id].x for n in graph.nodes if n.kind in kinds} for kind, kinds in {
        "rules": {"rule"}, "lookup": {"lookup", "account_owner"}, "territories": {"territory"}, "pools": {"pool"},
        "owners": {"user", "inactive_user", "queue", "hold"}}.items()}
    assert all(len(xs) == 1 for xs in lefts.values()), lefts  # one column per kind
    order = [xs.pop() for xs in lefts.values()]
    assert order == sorted(order) and len(set(order)) == 5
    for edge, points in layout.routes:  # drawn edges go left to right
        xs = [x for x, _ in points]
        assert xs == sorted(xs), edge
    assert layout.width <= LAPTOP_WIDTH  # long names wrap instead of widening the picture


def test_labels_are_escaped_and_the_svg_is_well_formed() -> None:
    svg = routing_graph_svg(build_routing_graph(big_config()))
    assert "<with>" not in svg and "<all>" not in svg and "<script" not in svg
    drawn = svg_boxes(svg)
    assert any("Review <all>" in t for _, lines in drawn.values() for t in lines)  # unescaped back by the parser
    assert routing_graph_svg(build_routing_graph(big_config())) == svg  # deterministic


# --- the command ---------------------------------------------------------------------------------------------------


def test_command_writes_the_svg_and_prints_its_path(tmp_path: Path) -> None:
    out = tmp_path / "pictures" / "routing.svg"
    result = runner.invoke(cli(), ["graph", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    drawn = svg_boxes(out.read_text(encoding="utf-8"))
    assert "pool:emea_ae" in drawn and "rule:1" in drawn

    rules = tmp_path / "rules.yaml"
    data = yaml.safe_load(DEFAULT_ROUTING.read_text(encoding="utf-8"))
    data["rules"][0]["name"] = "renamed_first_rule"
    rules.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = runner.invoke(cli(), ["graph", "--rules", str(rules), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1. renamed_first_rule" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["pools"]["emea_ae"]["members"].append({"user": "nobody"}),
     "pools.emea_ae.members[3].user: unknown user 'nobody'"),
    (lambda d: d["rules"][2].update(pool="nowhere"), "rules[2]: Value error, give exactly one action"),
    (lambda d: d["territories"][1].update(pool="nowhere"), "territories[1].pool: unknown pool 'nowhere'"),
])
def test_bad_config_gives_one_line_naming_the_yaml_path(tmp_path: Path, change: Any, expected: str) -> None:
    data = yaml.safe_load(DEFAULT_ROUTING.read_text(encoding="utf-8"))
    change(data)
    rules = tmp_path / "routing.yaml"
    rules.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "graph.svg"
    result = runner.invoke(cli(), ["graph", "--rules", str(rules), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(f"error: {rules}: ") and expected in lines[0], lines[0]
    assert not out.exists()


def test_unreadable_yaml_and_non_svg_output(tmp_path: Path) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text("rules: [\n", encoding="utf-8")
    result = runner.invoke(cli(), ["graph", "--rules", str(rules), "--out", str(tmp_path / "g.svg")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert f"{rules}: line " in result.output and "invalid YAML" in result.output
    result = runner.invoke(cli(), ["graph", "--out", str(tmp_path / "g.png")])
    assert result.exit_code == 2 and "give a .svg file" in result.output
    assert not (tmp_path / "g.png").exists()


# --- a person's view -----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)")
def test_graph_renders_in_chromium_with_every_label_inside_its_box(tmp_path: Path) -> None:
    """Rendered as the report page will embed it (inline SVG in HTML): every text's rendered extent lies inside its
    box, no two boxes overlap, and the demo graph fits a laptop-wide window. Screenshot: SCREENSHOT."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    pages = {}
    for name, config in (("demo", load_routing_config(DEFAULT_ROUTING)), ("big", big_config())):
        page = tmp_path / f"{name}.html"
        page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body style='margin:0'>"
                        + routing_graph_svg(build_routing_graph(config)) + "</body></html>", encoding="utf-8")
        pages[name] = page
    measure = """() => [...document.querySelectorAll('g.node')].map(g => {
        const r = g.querySelector('rect').getBBox();
        return {id: g.dataset.node, rect: [r.x, r.y, r.width, r.height],
                texts: [...g.querySelectorAll('text')].map(t => { const b = t.getBBox();
                                                             return [b.x, b.y, b.width, b.height]; })};
    })"""
    found: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            view = browser.new_page(viewport={"width": LAPTOP_WIDTH, "height": 900})
            for name, page in pages.items():
                view.goto(page.as_uri(), wait_until="load")
                found[name] = view.evaluate(measure)
                if name == "demo":
                    found["scroll_width"] = view.evaluate("document.documentElement.scrollWidth")
                    SCREENSHOT.unlink(missing_ok=True)
                    view.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert found["scroll_width"] <= LAPTOP_WIDTH  # no horizontal scrolling on a laptop
    for name in pages:
        nodes = found[name]
        assert len(nodes) > 10
        outside = []
        for node in nodes:
            x, y, w, h = node["rect"]
            for tx, ty, tw, th in node["texts"]:
                if not (tx >= x and ty >= y and tx + tw <= x + w and ty + th <= y + h):
                    outside.append((node["id"], (tx, ty, tw, th), (x, y, w, h)))
        assert outside == [], outside[:5]
        assert overlapping({n["id"]: Box(*n["rect"]) for n in nodes}) == []
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 20_000
