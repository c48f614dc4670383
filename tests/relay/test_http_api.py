"""The relay's /metrics merge: every worker's samples labelled, each family whole and once."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from reference_server.shell.exposition import Families, ServerCollector, render
from reference_server.metrics import Metrics
from reference_server.shell.relay_http import label_worker_metrics, worker_up


def test_worker_metrics_are_labelled_and_families_stay_whole():
    first, second = Metrics(), Metrics()
    first.sessions, second.sessions = 3, 5
    first.drops["stun_bad_integrity"] = 2
    first.phases["selected_to_dtls"].observe(0.003)
    pages = {0: render(ServerCollector(first)).decode(), 1: render(ServerCollector(second)).decode(),
             2: "this is { not prometheus text"}
    merged = render(Families([worker_up({0: True, 1: True, 2: True}), *label_worker_metrics(pages)])).decode()
    families = {family.name: family for family in text_string_to_metric_families(merged)}
    sessions = {sample.labels["worker"]: sample.value for sample in families["rtcgate_sessions"].samples}
    assert sessions == {"0": 3, "1": 5}  # the page that did not parse is left out
    drops = families["rtcgate_drops"].samples
    assert [(s.labels, s.value) for s in drops] == [({"worker": "0", "reason": "stun_bad_integrity"}, 2)]
    counts = [s for s in families["rtcgate_setup_phase_seconds"].samples
              if s.name.endswith("_count") and s.labels["phase"] == "selected_to_dtls"]
    assert {s.labels["worker"]: s.value for s in counts} == {"0": 1, "1": 0}
    assert families["rtcgate_setup_phase_seconds"].type == "histogram"
    lines = merged.splitlines()
    assert lines.count("# TYPE rtcgate_sessions gauge") == 1
    # Prometheus wants a family's samples together, right after its HELP and TYPE.
    type_at = lines.index("# TYPE rtcgate_sessions gauge")
    assert lines[type_at + 1:type_at + 3] == ['rtcgate_sessions{worker="0"} 3.0', 'rtcgate_sessions{worker="1"} 5.0']
    assert all(line.startswith("#") or 'worker="' in line for line in lines)
