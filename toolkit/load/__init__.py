"""`rtcgate load`: legit sessions with real ICE, DTLS and SRTP, measured quiet and under attack.

- accounting: probe payloads and per-session counts (loss, reordering, late, RTT, jitter), sans-IO.
- report: the run's JSON and a self-contained HTML page with tables and SVG plots.
- attacks: attack mixes (KIND@PPS) built with the crafters and sent at a paced rate to loopback.
- sessions: one legit session, set up by the probe peer, its media on a lean SRTP path.
- metrics_poll: the target's /metrics read over time (sessions, memory, drops by reason).
- run: the whole run: setup, quiet and attack windows, /metrics over time, verdicts.
"""
