"""Scoring models and their evaluation (`model`), the lifecycle policy and moves (`lifecycle`) and backtesting a model
on historical leads (`backtest`).
"""
