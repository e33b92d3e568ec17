"""Thin Prefect task wrappers around leadflow's core (a Prefect entrypoint folder, run from the repo root)."""
