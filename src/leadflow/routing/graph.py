"""The routing graph: a routing config drawn as a picture, rules → territory lookup → territories → pools → owners.

Three pure steps: `build_routing_graph` turns a `RoutingConfig` into a graph model (boxes with their text, and
edges: a rule's action, its `otherwise` chain, a territory's pool, a pool's members and its `overflow`);
`layout_routing_graph` places it in left-to-right columns (one per kind of box; an edge spanning several columns
passes through a gap reserved in each column it crosses, so no line runs over a box; boxes are ordered to limit
crossings and sized to their text, measured with Liberation Sans / Arial advance widths plus a margin);
`routing_graph_svg` draws it as one self-contained SVG in the style of `leadflow.audit.charts` (no script, every
label escaped). A pool's overflow into a territory lookup or the account owner would point back to an earlier
column: it is stated in the pool's box and not drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from leadflow.audit.charts import esc, svg_open, text_width
from leadflow.pipeline.conditions import describe
from leadflow.routing.model import Action, RoutingConfig
from leadflow.routing.ownership import Reassign

__all__ = ["Box", "Edge", "GraphLayout", "Node", "RoutingGraph", "build_routing_graph", "layout_routing_graph",
           "routing_graph_svg", "text_width"]

RULE, LOOKUP, TERRITORY, POOL, OWNER = range(5)
COLUMN_TITLES: Final[tuple[str, ...]] = ("Rules (first match wins)", "Lookup", "Territories (first match)",
                                         "Pools (round robin, ×weight)", "Owners and outcomes")
FILLS: Final[dict[str, str]] = {"rule": "#bee3f8", "lookup": "#e2e8f0", "account_owner": "#c6f6d5",
                                "territory": "#fefcbf", "pool": "#feebc8", "user": "#c6f6d5",
                                "inactive_user": "#edf2f7", "queue": "#e9d8fd", "hold": "#fed7d7"}
# style → (colour, dash pattern, stroke width, legend text)
EDGE_STYLES: Final[dict[str, tuple[str, str, float, str]]] = {
    "route": ("#2d3748", "", 1.4, "routes to"),
    "otherwise": ("#dd6b20", "6 4", 1.4, "otherwise (the action above found nobody)"),
    "overflow": ("#c53030", "2 3", 1.6, "overflow (nobody in the pool available)"),
    "member": ("#38a169", "", 1.2, "pool member"),
}

FONT_PX, LINE_H, PAD_X, PAD_Y = 12, 16, 10, 8
WRAP_PX: Final[float] = 200.0
COL_GAP, MARGIN, TOP, BOX_GAP, DUMMY_H, DUMMY_GAP = 56.0, 16.0, 64.0, 14.0, 4.0, 6.0

def _wrap(text: str, limit: float = WRAP_PX, *, bold: bool = False) -> list[str]:
    """`text` broken at spaces into lines no wider than `limit` (a word wider than that is cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, bold=bold) <= limit:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for ch in word:
            if current and text_width(current + ch, bold=bold) > limit:
                lines.append(current)
                current = ""
            current += ch
    return [*lines, current] if current or not lines else lines


def _wrap_parts(parts: list[str], limit: float = WRAP_PX) -> list[str]:
    """`parts` joined by ", " on as few lines as fit `limit`, breaking only between parts (or inside one too wide)."""
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]}, {part}" if lines else part
        if lines and text_width(joined) <= limit:
            lines[-1] = joined
        else:
            if lines:
                lines[-1] += ","
            lines += _wrap(part, limit)
    return lines


# --- the graph model -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A box: `kind` picks its colour and `column` its place; `title` in bold (wrapped), then `lines`."""

    id: str
    column: int
    kind: str
    title: str
    lines: tuple[str, ...] = ()

    @property
    def title_lines(self) -> list[str]:
        return _wrap(self.title, bold=True)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    style: str  # a key of EDGE_STYLES


@dataclass(frozen=True)
class RoutingGraph:
    heading: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)


def _minutes(minutes: int) -> str:
    return f"{minutes // 60} h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes} min"


def _territory_lines(config: RoutingConfig, index: int) -> list[str]:
    t = config.territories[index]
    criteria = [f"{k} {', '.join(map(str, getattr(t, k)))}" for k in ("countries", "states", "segments", "industries")
                if getattr(t, k)]
    criteria += [f"postal {r.country} {r.start}–{r.end}" for r in t.postal_ranges]
    return [line for c in (criteria or ["every lead"]) for line in _wrap(c)]


def build_routing_graph(config: RoutingConfig) -> RoutingGraph:
    """The graph model of `config`: every rule (in order, condition summarised), the territories, every pool with
    its members' weights and caps, the queues, the users leads can reach, the holds; edges for each rule's action
    and `otherwise` chain, each territory's pool, pool membership and each pool's overflow."""
    nodes: dict[str, Node] = {}
    edges: dict[Edge, None] = {}  # insertion-ordered set

    def add(node: Node) -> str:
        nodes.setdefault(node.id, node)
        return node.id

    def user(uid: str) -> str:
        u = config.users[uid]
        kind = "user" if u.active else "inactive_user"
        return add(Node(f"user:{uid}", OWNER, kind, u.name, (uid, *(() if u.active else ("inactive",)))))

    def queue(name: str) -> str:
        q = config.queues[name]
        return add(Node(f"queue:{name}", OWNER, "queue", f"queue {name}",
                        tuple(x for x in (q.name, q.owner_id) if x)))

    def target(action: Action) -> str:
        kind = action.kind
        if kind == "assign_to":
            return user(str(action.assign_to))
        if kind == "account_owner":
            lines = ("the matched account's", "owner")
            return add(Node("account_owner", LOOKUP, "account_owner", "account owner", lines))
        if kind == "territory":
            return add(Node("lookup:territory", LOOKUP, "lookup", "by territory", ("first matching", "territory")))
        if kind == "pool":
            return f"pool:{action.pool}"
        if kind == "queue":
            return queue(str(action.queue))
        return add(Node(f"hold:{action.hold}", OWNER, "hold", "hold", tuple(_wrap(str(action.hold)))))

    def link(source: str, action: Action, style: str, next_style: str = "otherwise") -> None:
        edges[Edge(source, target(action), style)] = None
        if action.otherwise is not None:
            link(source, action.otherwise, next_style, next_style)

    for i, rule in enumerate(config.rules, start=1):
        lines = _wrap("if " + describe(rule.when) if rule.when is not None else "every other lead (fallback)")
        lines += _wrap("→ " + rule.text())
        if rule.sla_minutes:
            lines.append(f"SLA {_minutes(rule.sla_minutes)}" + (" (working time)" if rule.sla_working_hours else ""))
        if rule.on_sla_breach == "reassign":
            lines.append("SLA breach: reassign")
        if isinstance(rule.reassign, Reassign):
            lines += _wrap(rule.reassign.text())
        elif rule.reassign:
            lines.append("re-routes leads it assigned")
        add(Node(f"rule:{i}", RULE, "rule", f"{i}. {rule.name}", tuple(lines)))
    for name, pool in config.pools.items():
        total = sum(m.weight for m in pool.members)
        lines = []
        for m in pool.members:
            u = config.users[m.user]
            parts = [f"{u.name} ×{m.weight} ({m.weight / total:.0%})"]
            parts += [] if m.daily_cap is None else [f"cap {m.daily_cap}/day"]
            parts += [] if u.active else ["inactive"]
            lines += _wrap_parts(parts)
        overflow = pool.overflow or Action(hold=f"pool {name} unavailable")
        lines += _wrap("overflow → " + overflow.text())
        add(Node(f"pool:{name}", POOL, "pool", f"pool {name}", tuple(lines)))
    for name in config.queues:
        queue(name)
    for i, t in enumerate(config.territories):
        add(Node(f"territory:{i}", TERRITORY, "territory", t.name, tuple(_territory_lines(config, i))))
    for i, rule in enumerate(config.rules, start=1):
        link(f"rule:{i}", rule, "route")
    if config.territories:
        lookup = target(Action(territory=True))
        for i, t in enumerate(config.territories):
            edges[Edge(lookup, f"territory:{i}", "route")] = None
            edges[Edge(f"territory:{i}", f"pool:{t.pool}", "route")] = None
    for name, pool in config.pools.items():
        for m in pool.members:
            edges[Edge(f"pool:{name}", user(m.user), "member")] = None
        link(f"pool:{name}", pool.overflow or Action(hold=f"pool {name} unavailable"), "overflow", "overflow")
    order = {kind: k for k, kind in enumerate(FILLS)}
    ordered = sorted(nodes.values(), key=lambda n: (n.column, order[n.kind] if n.column == OWNER else 0))
    heading = f"Routing {config.version} ({config.timezone}): rules → territories → pools → owners"
    return RoutingGraph(heading, tuple(ordered), tuple(edges))


# --- layout ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def overlaps(self, other: Box) -> bool:
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)


@dataclass(frozen=True)
class GraphLayout:
    """Where everything goes: a box per node; a gap per (target, style, column) that edges cross a column through
    (a column-wide strip `DUMMY_H` high); each edge going right as its points (source exit, gap entries and exits,
    target entry); same-column edges with their two boxes; the columns (title, x, width); the picture's size."""

    boxes: dict[str, Box]
    gaps: dict[str, Box]
    routes: list[tuple[Edge, list[tuple[float, float]]]]
    side_edges: list[tuple[Edge, Box, Box]]
    columns: list[tuple[str, float, float]]
    width: int
    legend_y: float
    height: int


def _size(node: Node) -> tuple[float, float]:
    titles = node.title_lines
    w = max([*(text_width(line, bold=True) for line in titles), *(text_width(line) for line in node.lines)])
    return w + 2 * PAD_X, 2 * PAD_Y + LINE_H * (len(titles) + len(node.lines))


def _isotonic(values: list[float]) -> list[float]:
    """The non-decreasing sequence nearest to `values` in least squares (pool adjacent violators)."""
    blocks: list[tuple[float, int]] = []
    for v in values:
        mean, count = v, 1
        while blocks and blocks[-1][0] > mean:
            m, c = blocks.pop()
            mean, count = (m * c + mean * count) / (c + count), c + count
        blocks.append((mean, count))
    return [m for m, c in blocks for _ in range(c)]


Neighbours = dict[str, list[str]]


def _order(layers: list[list[str]], preds: Neighbours, succs: Neighbours) -> None:
    """Reorder every column but the rules (kept in rule order) by the barycentre of its neighbours' relative
    positions, sweeping right then left a few times (fewer crossings)."""

    def rank(c: int, nbrs: Neighbours) -> None:
        pos = {k: i / max(len(layer), 1) for layer in layers for i, k in enumerate(layer)}
        here = layers[c]

        def key(item: tuple[int, str]) -> float:
            near = [pos[k] for k in nbrs.get(item[1], [])]
            return sum(near) / len(near) if near else item[0] / max(len(here), 1)

        layers[c] = [k for _, k in sorted(enumerate(here), key=key)]

    for _ in range(4):
        for c in range(1, len(layers)):
            rank(c, preds)
        for c in range(len(layers) - 2, 0, -1):
            rank(c, succs)


def _tops(layers: list[list[str]], sizes: dict[str, tuple[float, float]], preds: Neighbours,
          succs: Neighbours) -> dict[str, float]:
    """Each item's top: the rules stacked; in every other column, in order and spaced, as near as possible (least
    squares) to the average height of what it connects to, refined by sweeps right and left."""
    tops: dict[str, float] = {}

    def place(c: int, tables: list[Neighbours]) -> None:
        offsets, targets, offset, previous = [], [], 0.0, TOP
        for i, k in enumerate(layers[c]):
            if i:
                before = layers[c][i - 1]
                offset += sizes[before][1] + (DUMMY_GAP if before[0] == "~" and k[0] == "~" else BOX_GAP)
            near = [tops[n] + sizes[n][1] / 2 for table in tables for n in table.get(k, []) if n in tops]
            want = sum(near) / len(near) - sizes[k][1] / 2 - offset if near else previous
            offsets.append(offset)
            targets.append(want)
            previous = want
        fitted = _isotonic(targets)  # z = top - offset must not decrease: order and spacing are kept
        shift = max(0.0, TOP - fitted[0]) if fitted else 0.0
        for k, z, o in zip(layers[c], fitted, offsets, strict=True):
            tops[k] = z + o + shift

    place(0, [])
    for c in range(1, len(layers)):
        place(c, [preds])
    for _ in range(2):
        for c in [*range(len(layers) - 2, 0, -1), *range(1, len(layers))]:
            place(c, [preds, succs])
    return tops


def layout_routing_graph(graph: RoutingGraph) -> GraphLayout:
    """Columns left to right (kinds with no box left out), boxes sized to their text, ordered to limit crossings
    and placed near what they connect to; an edge spanning columns passes through a gap in each one it crosses
    (edges to the same target in the same style share it)."""
    used = sorted({n.column for n in graph.nodes})
    col_of = {n.id: used.index(n.column) for n in graph.nodes}
    sizes = {n.id: _size(n) for n in graph.nodes}
    layers: list[list[str]] = [[n.id for n in graph.nodes if col_of[n.id] == c] for c in range(len(used))]
    chains: list[tuple[Edge, list[str]]] = []
    side: list[Edge] = []
    for edge in graph.edges:
        a, b = col_of[edge.source], col_of[edge.target]
        if a == b:
            side.append(edge)
        elif b > a:
            gaps = [f"~{edge.target}|{edge.style}|{c}" for c in range(a + 1, b)]
            for c, gap in zip(range(a + 1, b), gaps, strict=True):
                if gap not in sizes:
                    layers[c].append(gap)
                    sizes[gap] = (0.0, DUMMY_H)
            chains.append((edge, [edge.source, *gaps, edge.target]))
    preds: Neighbours = {}
    succs: Neighbours = {}
    for _, chain in chains:
        for u, v in zip(chain, chain[1:]):
            if u not in preds.setdefault(v, []):
                preds[v].append(u)
                succs.setdefault(u, []).append(v)
    _order(layers, preds, succs)
    tops = _tops(layers, sizes, preds, succs)
    widths = [max(sizes[k][0] for k in layer) for layer in layers]
    xs = [MARGIN + sum(widths[:c]) + c * COL_GAP for c in range(len(layers))]
    placed = {k: Box(xs[c], tops[k], widths[c], sizes[k][1]) for c, layer in enumerate(layers) for k in layer}
    boxes = {k: box for k, box in placed.items() if k[0] != "~"}
    gaps = {k: box for k, box in placed.items() if k[0] == "~"}
    routes = []
    for edge, chain in chains:
        source, target = boxes[edge.source], boxes[edge.target]
        points = [(source.x + source.w, source.cy)]
        for gap in chain[1:-1]:
            points += [(gaps[gap].x, gaps[gap].cy), (gaps[gap].x + gaps[gap].w, gaps[gap].cy)]
        routes.append((edge, [*points, (target.x, target.cy)]))
    width = math.ceil(max(xs[-1] + widths[-1] + MARGIN, text_width(graph.heading, bold=True, px=14) + 2 * MARGIN))
    legend_y = max(b.y + b.h for b in placed.values()) + 28
    return GraphLayout(boxes, gaps, routes, [(e, boxes[e.source], boxes[e.target]) for e in side],
                       [(COLUMN_TITLES[u], x, w) for u, x, w in zip(used, xs, widths, strict=True)], width,
                       legend_y, math.ceil(_legend(width, legend_y)[1]))


# --- drawing ---------------------------------------------------------------------------------------------------------


def _curve(points: list[tuple[float, float]]) -> str:
    """A path through `points`: straight across a column's gap, an S-curve between columns."""
    (x, y), rest = points[0], points[1:]
    parts = [f"M {x:.1f} {y:.1f}"]
    for i, (nx, ny) in enumerate(rest):
        if i % 2 == 0:  # between columns
            mid = (nx - x) / 2
            parts.append(f"C {x + mid:.1f} {y:.1f} {nx - mid:.1f} {ny:.1f} {nx:.1f} {ny:.1f}")
        else:  # across a column, at the gap's height
            parts.append(f"L {nx:.1f} {ny:.1f}")
        x, y = nx, ny
    return " ".join(parts)


def _legend(width: float, top: float) -> tuple[list[str], float]:
    """The legend of the edge styles from `top`, in rows no wider than `width`, and the y below it."""
    parts, x, y = [], MARGIN, top
    for style, (colour, dash, stroke, text) in EDGE_STYLES.items():
        item = 34 + text_width(text) + 24
        if x > MARGIN and x + item > width - MARGIN:
            x, y = MARGIN, y + 20
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<g class="legend"><line x1="{x:.1f}" x2="{x + 28:.1f}" y1="{y - 4:.1f}" y2="{y - 4:.1f}" '
                     f'stroke="{colour}" stroke-width="{stroke}"{dashes} marker-end="url(#arrow-{style})"/>'
                     f'<text x="{x + 34:.1f}" y="{y:.1f}">{esc(text)}</text></g>')
        x += item
    return parts, y + 16


def routing_graph_svg(graph: RoutingGraph, layout: GraphLayout | None = None) -> str:
    """The graph as SVG text: `role="img"`, titled, boxes as `<g class="node" data-node=…>` with a tooltip of their
    full text, edges behind them, a legend of the edge styles at the bottom."""
    layout = layout or layout_routing_graph(graph)
    parts = svg_open(layout.width, layout.height, "Routing graph", graph.heading)
    markers = "".join(
        f'<marker id="arrow-{style}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        for style, (colour, *_rest) in EDGE_STYLES.items())
    parts.append(f"<defs>{markers}</defs>")
    for title, x, w in layout.columns:
        parts.append(f'<text class="column" x="{x + w / 2:.1f}" y="{TOP - 14:.1f}" text-anchor="middle" '
                     f'fill="#4a5568" font-weight="bold">{esc(title)}</text>')
    drawn: set[tuple[str, str]] = set()
    for edge, points in layout.routes:
        colour, dash, stroke, _ = EDGE_STYLES[edge.style]
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        path = _curve(points)
        if (path, edge.style) in drawn:
            continue
        drawn.add((path, edge.style))
        parts.append(f'<path class="edge {edge.style}" d="{path}" fill="none" stroke="{colour}" '
                     f'stroke-width="{stroke}"{dashes} marker-end="url(#arrow-{edge.style})"/>')
    for edge, source, target in layout.side_edges:
        colour, dash, stroke, _ = EDGE_STYLES[edge.style]
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        bulge = source.x - COL_GAP * 0.45
        y1, y2 = source.cy + 8, target.cy - 8
        parts.append(f'<path class="edge {edge.style}" d="M {source.x:.1f} {y1:.1f} C {bulge:.1f} {y1:.1f} '
                     f'{bulge:.1f} {y2:.1f} {target.x:.1f} {y2:.1f}" fill="none" stroke="{colour}" '
                     f'stroke-width="{stroke}"{dashes} marker-end="url(#arrow-{edge.style})"/>')
    for node in graph.nodes:
        box = layout.boxes[node.id]
        tip = " · ".join([node.title, *node.lines])
        stroke = ' stroke-dasharray="4 3"' if node.kind == "inactive_user" else ""
        parts.append(f'<g class="node {node.kind}" data-node="{esc(node.id)}"><title>{esc(tip)}</title>'
                     f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="6" '
                     f'fill="{FILLS[node.kind]}" stroke="#2d3748"{stroke}/>')
        titles = node.title_lines
        for i, line in enumerate((*titles, *node.lines)):
            weight = ' font-weight="bold"' if i < len(titles) else ""
            parts.append(f'<text x="{box.x + PAD_X:.1f}" y="{box.y + PAD_Y + i * LINE_H + 12:.1f}"{weight}>'
                         f"{esc(line)}</text>")
        parts.append("</g>")
    parts += _legend(layout.width, layout.legend_y)[0]
    parts.append("</svg>")
    return "\n".join(parts)
