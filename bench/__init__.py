"""Benchmarks of Hounsfield against Orthanc (the reference archive), run side by side.

`python -m bench.run` (or `make bench`) starts both archives on free loopback ports, runs every
scenario on each, and writes `bench/results/<UTC time>.json` and `docs/perf.md`.
"""
