"""`leadflow routing graph`: the routing config drawn as a picture (SVG), the way `leadflow report` draws the
process map; the drawing is done in `leadflow.routing.graph`. Register with
`routing_app.command("graph")(routing_graph)`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadflow.cli.common import _guard
from leadflow.pipeline.errors import LeadflowError

__all__ = ["routing_graph"]


def routing_graph(
    config: Annotated[Path | None, typer.Option("--rules", help="Routing rules YAML to draw; default: the bundled "
                                                "routing.yaml.")] = None,
    output: Annotated[Path, typer.Option("--out", "-o", help="SVG file to write.")] = Path("routing-graph.svg"),
) -> None:
    """Draw the routing rules as a graph, rules → territories → pools → owners, and print the SVG file's path.

    Columns, left to right: rules in order with their conditions; the territory lookup; territories; pools with
    their members' weights, caps and overflow; users, queues and holds. Exit 2 on a bad rules file or output path."""
    from leadflow.pipeline.io import _atomic_write
    from leadflow.routing import DEFAULT_ROUTING, load_routing_config
    from leadflow.routing.graph import build_routing_graph, routing_graph_svg

    def work() -> Path:
        if output.suffix.lower() != ".svg":
            raise LeadflowError(f"--out {output}: the routing graph is written as SVG; give a .svg file")
        svg = routing_graph_svg(build_routing_graph(load_routing_config(config or DEFAULT_ROUTING)))
        try:
            _atomic_write(output, lambda tmp: tmp.write_text(svg, encoding="utf-8"))
        except OSError as exc:
            raise LeadflowError(f"{output}: cannot write ({exc.strerror or exc})") from None
        return output

    typer.echo(str(_guard(work)))
