"""The six GX gates alone: each stage's real output on N generated messy leads, gated cold and warm.

    python benchmarks/bench_gates.py --leads 100
    python benchmarks/bench_gates.py --leads 100 --repeat 10 --profile /tmp/gates.prof   # cProfile of the warm runs

The stages (standardize → enrich → comply → score → lifecycle → assign, with the packaged routing rules) run once,
untimed, to get each stage's output. Then the six gates run in order, the way `flows/stages.py` calls them: each
check through a new `QualityGate` (one per task call). GX start-up (import, ephemeral context, data source) is timed
first on its own; the first round of gates after it is the cold figure (suites read, parsed and compiled); the next
`--repeat` rounds are warm. Target: ≤ 0.5 s warm for all six gates on 100 leads. Seconds are wall-clock; the CPU
seconds of the process are shown too, since a shared machine's load moves wall-clock figures a lot. Every warm
round's results (quarantine records, per-expectation outcomes, or the typed error) must equal the cold round's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from leadflow.pipeline.config import load_rules
from leadflow.pipeline.errors import DataQualityError
from leadflow.pipeline.io import prepare_leads
from leadflow.pipeline.settings import Settings
from leadflow.routing import DEFAULT_ROUTING
from leadflow.stages import pipeline_from_names
from leadflow.synth import messy_leads

PIPELINE = ["standardize", "enrich", "comply", "score", "lifecycle", "assign"]


def stage_outputs(leads: int, seed: int) -> list[tuple[str, str, pd.DataFrame]]:
    """(stage, suite, output) of every stage over `leads` messy leads; each stage gets the whole previous output
    (failing rows included), so every gate sees `leads` rows."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "leadflow.yaml"
        config.write_text(yaml.safe_dump({"pipeline": PIPELINE, "routing": {"rules": str(DEFAULT_ROUTING)},
                                          "quality": {"max_quarantine_share": 1.0}}), encoding="utf-8")
        rules = load_rules(config)
    frame = prepare_leads(messy_leads(leads, seed=seed)).frame
    outputs = []
    for stage in pipeline_from_names(rules.pipeline):
        frame = stage.apply(frame, rules)
        outputs.append((stage.name, stage.suite, frame))
    return outputs


def gate_round(
    outputs: list[tuple[str, str, pd.DataFrame]], suites_dir: Path
) -> tuple[list[float], float, list[object]]:
    """Gate every output once (a new QualityGate each, as the task does): wall seconds per gate, CPU seconds of the
    round, and a comparable outcome per gate."""
    from leadflow.pipeline.quality import QualityGate

    seconds, outcomes = [], []
    cpu = time.process_time()
    for stage, suite, frame in outputs:
        started = time.perf_counter()
        try:
            result = QualityGate(suites_dir, 1.0).check(frame, stage, suite)
            outcome: object = (result.quarantine.to_dict("list"), result.expectations, result.passed.index.tolist())
        except DataQualityError as exc:
            outcome = ("failed", str(exc), {k: v for k, v in exc.result.items() if k != "seconds"})
        seconds.append(time.perf_counter() - started)
        outcomes.append(outcome)
    return seconds, time.process_time() - cpu, outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="warm rounds after the cold one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the warm rounds here")
    args = parser.parse_args()

    started = time.perf_counter()
    outputs = stage_outputs(args.leads, args.seed)
    print(f"ran {len(outputs)} stages over {args.leads:,} leads in {time.perf_counter() - started:.1f}s (not counted)")
    suites_dir = Settings().suites_dir()

    started, cpu = time.perf_counter(), time.process_time()
    from leadflow.pipeline.quality import _batch_definition

    _batch_definition()
    print(f"GX start-up (import, ephemeral context, data source): {time.perf_counter() - started:.3f} s "
          f"({time.process_time() - cpu:.3f} CPU s), before the cold round")
    cold, cold_cpu, reference = gate_round(outputs, suites_dir)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    warm: list[list[float]] = []
    warm_cpu: list[float] = []
    for _ in range(args.repeat):
        seconds, cpu_seconds, outcomes = gate_round(outputs, suites_dir)
        if outcomes != reference:
            print("FAIL: a warm round's gate results differ from the cold round's", file=sys.stderr)
            return 1
        warm.append(seconds)
        warm_cpu.append(cpu_seconds)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))

    print(f"{'gate':<20}{'rows':>8}{'quarantined':>13}{'cold s':>10}{'warm s (median)':>17}{'warm s (min)':>14}")
    for i, (stage, suite, frame) in enumerate(outputs):
        outcome = reference[i]
        quarantined = "failed" if outcome[0] == "failed" else len(set(outcome[0]["position"]))  # type: ignore[index]
        column = [w[i] for w in warm] or [float("nan")]
        print(f"{suite:<20}{len(frame):>8}{quarantined!s:>13}{cold[i]:>10.3f}{statistics.median(column):>17.3f}"
              f"{min(column):>14.3f}")
    totals = [sum(w) for w in warm] or [float("nan")]
    print(f"{'all six':<20}{'':>8}{'':>13}{sum(cold):>10.3f}{statistics.median(totals):>17.3f}{min(totals):>14.3f}")
    cpus = warm_cpu or [float("nan")]
    print(f"{'all six, CPU s':<20}{'':>8}{'':>13}{cold_cpu:>10.3f}{statistics.median(cpus):>17.3f}{min(cpus):>14.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
