"""The run's contract and plumbing: canonical columns (`schema`), the stage contract and process map (`stage`), the run
ledger and counts (`ledger`), the one Great Expectations helper (`quality`; its compiled suites and GX context
in `quality_gx`), the run config and its YAML loading
(`config`, `connections`, `yamlio`, `conditions`), what one run learns as it goes and hands to the stages
(`run_inputs`), lead files in and out (`io`, `csvsafe`), per-unique-value helpers
(`uniques`), typed errors (`errors`), environment settings (`settings`), finding the project (`project`) and
terminal progress bars (`progress`).
"""
