"""rtcgate's reports: one writer per format, shared by the conformance gate, load runs and the
interop matrix, and the conformance run's own reports.

- `json_report.write_json`: every JSON file (one format: strict JSON, UTF-8, one space of indent);
- `html.write_html`: every HTML page, rendered from `templates/` by `templating` (one base page,
  autoescaped, self-contained);
- `conformance`: a conformance run's four reports (`write_reports`) and the views they show;
  `junit` and `sarif` are its XML and SARIF; `evidence` writes a finding's pcaps, key log, SRTP
  keys and replay command;
- `common`: what the writers share (the tool's name and version, display names, datagram lines).

`toolkit.load.report` and `toolkit.interop.report` compute their pages and documents and write them
through `write_json` and `write_html`. Importing this package imports none of its modules, so a
load or interop run does not load the conformance runner.
"""
