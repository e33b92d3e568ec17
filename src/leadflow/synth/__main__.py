"""`python -m leadflow.synth --rows N --seed S --out PATH(.csv|.parquet)`: see `leadflow.synth.cli.main`."""

from leadflow.synth.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
