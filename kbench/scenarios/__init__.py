"""Scenarios: declarative workloads run on the engine (scheduler_perf so far)."""
