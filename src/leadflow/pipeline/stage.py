"""The stage contract and the ordered pipeline built from stage declarations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from leadflow.pipeline.errors import PipelineOrderError, StageContractError
from leadflow.pipeline.schema import INPUT_COLUMNS, dtype_of

if TYPE_CHECKING:
    from leadflow.pipeline.config import Rules
    from leadflow.pipeline.run_inputs import RunInputs

StageFn = Callable[[pd.DataFrame, "Rules", "RunInputs"], pd.DataFrame]
"""`fn(frame, rules, inputs)`: the declared columns, the run config, and the run's per-run data."""


@dataclass(frozen=True)
class Stage:
    """A pure DataFrame → DataFrame step that declares the columns it reads and writes.

    `fn` receives only the declared `reads` columns and must return exactly the `writes` columns on the same index,
    so a stage cannot depend on, or change, anything it did not declare.
    """

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    fn: StageFn = field(compare=False)
    description: str = ""
    gate: str = ""
    """The GX suite gating the output, when not `leads_<name>` (suites name the state: `leads_enriched`)."""

    @property
    def suite(self) -> str:
        """Name of the Great Expectations suite that gates this stage's output."""
        return self.gate or f"leads_{self.name}"

    def apply(self, frame: pd.DataFrame, rules: Rules, inputs: RunInputs | None = None) -> pd.DataFrame:
        """Run the stage on `frame` and return `frame` with the written columns replaced. `inputs`: the run's
        per-run data (default: none pulled, evaluated now)."""
        if inputs is None:
            from leadflow.pipeline.run_inputs import NO_INPUTS

            inputs = NO_INPUTS
        missing = [c for c in self.reads if c not in frame.columns]
        if missing:
            raise StageContractError(f"stage {self.name!r} needs columns {missing} that the frame lacks")
        written = self.fn(frame[list(self.reads)], rules, inputs)
        if list(written.columns) != list(self.writes):
            raise StageContractError(
                f"stage {self.name!r} declared writes {list(self.writes)} but returned {list(written.columns)}"
            )
        if not written.index.equals(frame.index):
            raise StageContractError(f"stage {self.name!r} returned a different index (rows added, dropped or moved)")
        out = frame.copy(deep=False)  # copy-on-write: columns are shared until replaced
        for column in self.writes:
            out[column] = written[column].astype(dtype_of(column))
        out.attrs.update(written.attrs)  # what a stage hands back besides columns, e.g. its new state
        return out


@dataclass(frozen=True)
class Pipeline:
    """Stages in run order; construct with `build_pipeline` so the order is checked."""

    stages: tuple[Stage, ...]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]


def build_pipeline(stages: Sequence[Stage], inputs: Iterable[str] = INPUT_COLUMNS) -> Pipeline:
    """Check that every stage reads only input columns, columns an earlier stage writes, or (their earlier value)
    columns it writes itself."""
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise PipelineOrderError(f"stage {stage.name!r} appears twice in the pipeline")
        seen.add(stage.name)
    available = set(inputs)
    for position, stage in enumerate(stages):
        for column in stage.reads:
            # A stage may read a column it writes itself: its value from an earlier run (read back from the CRM or a
            # file), empty for a new lead.
            if column in available or column in stage.writes:
                continue
            later = [s.name for s in stages[position + 1 :] if column in s.writes]
            if later:
                raise PipelineOrderError(
                    f"stage {stage.name!r} reads {column!r}, which only the later stage {later[0]!r} writes: "
                    f"run {later[0]!r} before {stage.name!r}"
                )
            raise PipelineOrderError(
                f"stage {stage.name!r} reads {column!r}, which is neither an input column nor written by an "
                "earlier stage"
            )
        available.update(stage.writes)
    return Pipeline(tuple(stages))


def _node_label(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "-"


def process_map(pipeline: Pipeline, source: str = "lead source", sink: str = "output / CRM") -> str:
    """A Mermaid flowchart of the pipeline, generated from the stage declarations."""
    lines = ["flowchart TD", f'    src[("{source}")]', '    quarantine[("quarantine")]']
    previous = "src"
    for stage in pipeline:
        node, gate = f"st_{stage.name}", f"gx_{stage.name}"
        lines.append(
            f'    {node}["<b>{stage.name}</b><br/>reads: {_node_label(stage.reads)}'
            f'<br/>writes: {_node_label(stage.writes)}"]'
        )
        lines.append(f'    {gate}{{{{"GX gate: {stage.suite}"}}}}')
        lines.append(f"    {previous} --> {node} --> {gate}")
        lines.append(f"    {gate} -. failing rows .-> quarantine")
        previous = gate
    lines.append(f'    sink[("{sink}")]')
    lines.append(f"    {previous} -- passing rows --> sink")
    return "\n".join(lines) + "\n"
