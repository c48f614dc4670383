"""The asyncio I/O shell around the sans-IO reference server: everything that owns a socket, a
timer, an HTTP server, a task or a child process lives here, and nowhere else in
`reference_server`.

The rest of the package (the core, its codecs, `voice/`, `relay/`) takes time as a parameter
and returns what to send; the modules here feed it datagrams, timers and signaling and carry
its outputs out. The shell imports the sans-IO modules, never the reverse
(tests/test_architecture.py enforces it; docs/architecture.md, principle 1).

server: the single-port server (UDP sockets, timer, HTTP). http_api: WHIP, the realtime-calls
alias, /metrics, /healthz. exposition: the cores' counters as a Prometheus page. datachannel,
datachannel_echo: SCTP associations through aiortc, and their default echo. voice,
model_driver, tone_model: the voice loop's model tasks and the embedded model. relay,
relay_http: the relay process in front of workers; relay_worker: a server behind it;
worker_processes: `serve --workers N`, the relay with its workers as child processes.
lifecycle: start, print the ready line, stop on SIGINT/SIGTERM.
"""
