"""CSV output writing: `LeadFileWriter.append` / `QuarantineFileWriter.append` per chunk, old path against new.

    python benchmarks/bench_output_writer.py                       # one 50,000-lead chunk, 5 repeats
    python benchmarks/bench_output_writer.py --rows 50000 --repeats 7 --seed 17

The chunk is what the writers receive in `leadflow run`: `messy_leads(rows)` prepared (`prepare_leads`) and run
through every stage of the default pipeline (no gates: every row is kept), and the input step's quarantine records.
Old path: `defuse(to_output(...)).to_csv(handle, index=False, quoting=csv.QUOTE_MINIMAL)`, as the writers did it
before `leadflow.pipeline.csv_out`; new path: the writers' `append` as they are. Each is run --repeats times on the
same chunk into a fresh file (after one warm-up); printed: CPU seconds (this process's user + sys,
`time.process_time`) per chunk, median and best, and the ratio old / new. The two files are compared byte for byte
first; the run stops if they differ.

Target: the new append at most half the old one's CPU for a 50,000-row chunk of real pipeline output.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from leadflow.pipeline.config import load_rules
from leadflow.pipeline.csvsafe import defuse
from leadflow.pipeline.io import LeadFileWriter, QuarantineFileWriter, prepare_leads, quarantine_lines
from leadflow.stages import pipeline_from_names
from leadflow.synth import messy_leads


def pipeline_chunk(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A chunk of processed leads and its input quarantine, as `lead_sync` hands them to the writers."""
    loaded = prepare_leads(messy_leads(rows, seed=seed))
    rules = load_rules(None)
    frame = loaded.frame
    for stage in pipeline_from_names(rules.pipeline):
        frame = stage.apply(frame, rules)
    return frame, loaded.refused.assign(stage="input")


def old_lead_append(writer: LeadFileWriter, frame: pd.DataFrame) -> None:
    out = writer._shaped(frame)
    defuse(out).to_csv(writer._handle, index=False, header=not writer._wrote_header, quoting=csv.QUOTE_MINIMAL)
    writer._wrote_header = True


def old_quarantine_append(writer: QuarantineFileWriter, quarantine: pd.DataFrame) -> None:
    lines = quarantine_lines(quarantine, writer.extra_columns)
    defuse(lines).to_csv(writer._handle, index=False, header=False)


def written(make: Callable[[Path], object], append: Callable[[object, pd.DataFrame], None], frame: pd.DataFrame,
            folder: Path, name: str) -> tuple[float, bytes]:
    """CPU seconds of one `append` into a fresh writer, and the file it gives."""
    path = folder / name
    with make(path) as writer:
        started = time.process_time()
        append(writer, frame)
        seconds = time.process_time() - started
    return seconds, path.read_bytes()


def measure(label: str, make: Callable[[Path], object], old: Callable, new: Callable, frame: pd.DataFrame,
            repeats: int, folder: Path) -> None:
    old_bytes = written(make, old, frame, folder, "old.csv")[1]
    new_bytes = written(make, new, frame, folder, "new.csv")[1]
    if old_bytes != new_bytes:
        raise SystemExit(f"{label}: the new writer's file differs from the old one's")
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(repeats):
        for which, append in (("old", old), ("new", new)):
            times[which].append(written(make, append, frame, folder, f"{which}.csv")[0])
    old_median, new_median = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"{label} ({len(frame):,} rows in, {len(new_bytes) / 1e6:,.1f} MB out, byte-identical)")
    print(f"  {'':<6}{'median CPU s':>14}{'best CPU s':>12}")
    for which, median in (("old", old_median), ("new", new_median)):
        print(f"  {which:<6}{median:>14.3f}{min(times[which]):>12.3f}")
    print(f"  ratio old / new: {old_median / new_median:.1f}x (median), "
          f"{min(times['old']) / min(times['new']):.1f}x (best)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    frame, quarantine = pipeline_chunk(args.rows, args.seed)
    print(f"built a {len(frame):,}-row chunk ({frame.shape[1]} columns) and {len(quarantine):,} quarantine records "
          f"in {time.perf_counter() - started:.1f}s (not counted)\n")
    with tempfile.TemporaryDirectory(prefix="bench-output-writer-") as folder:
        measure("LeadFileWriter.append (header + chunk)", LeadFileWriter, old_lead_append, LeadFileWriter.append,
                frame, args.repeats, Path(folder))
        measure("QuarantineFileWriter.append", QuarantineFileWriter, old_quarantine_append,
                QuarantineFileWriter.append, quarantine, args.repeats, Path(folder))


if __name__ == "__main__":
    main()
