"""Benchmarks: our savers next to LangGraph's official ones, measured in one run.

Run ``python -m benchmarks.run`` from the repository root (``--quick`` for a smoke run).
"""
