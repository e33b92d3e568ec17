"""Prefect flows (an entrypoint folder, run from the repo root): orchestration only."""
