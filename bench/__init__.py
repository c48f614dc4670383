"""rtcgate's benchmarks, run from a checkout as `python -m bench.<name>` (README, "Benchmarks").

Each benchmark module prints figures measured in that same run and writes them as JSON under
reports/bench/. `common` holds what they all share (command line, child processes, CPU
accounting, machine facts, results); `echo_client` is the echo client of the throughput ones.
"""
