"""Benchmarks: each module has run() -> dict and prints JSON when run as a script.

emulator bench capture --json      (or: python -m bench.capture)
"""
