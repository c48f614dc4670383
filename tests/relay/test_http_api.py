"""The relay's /metrics merge: every worker's samples labelled, each family whole and once."""
from __future__ import annotations

from reference_server.metrics import Metrics
from reference_server.relay.http_api import label_worker_metrics


def test_worker_metrics_are_labelled_and_families_stay_whole():
    first, second = Metrics(), Metrics()
    first.sessions, second.sessions = 3, 5
    first.drops["stun_bad_integrity"] = 2
    first.phases["selected_to_dtls"].observe(0.003)
    merged = label_worker_metrics({0: first.render(), 1: second.render()})
    lines = merged.splitlines()
    assert 'rtcgate_sessions{worker="0"} 3' in lines and 'rtcgate_sessions{worker="1"} 5' in lines
    assert 'rtcgate_drops_total{worker="0",reason="stun_bad_integrity"} 2' in lines
    assert 'rtcgate_setup_phase_seconds_count{worker="0",phase="selected_to_dtls"} 1' in lines
    assert lines.count("# TYPE rtcgate_sessions gauge") == 1
    # Prometheus wants a family's samples together, right after its HELP and TYPE.
    type_at = lines.index("# TYPE rtcgate_sessions gauge")
    assert lines[type_at + 1:type_at + 3] == ['rtcgate_sessions{worker="0"} 3', 'rtcgate_sessions{worker="1"} 5']
    assert all(line.startswith("#") or 'worker="' in line for line in lines)
