from reference_server.metrics import Metrics


def test_prometheus_text_has_counters_and_histograms():
    m = Metrics()
    m.packets_received["stun"] += 3
    m.drops["stun_unknown_ufrag"] += 2
    m.sessions = 1
    m.phases["selected_to_dtls"].observe(0.03)
    m.phases["selected_to_dtls"].observe(7.0)
    text = m.render()
    assert 'rtcgate_packets_received_total{kind="stun"} 3' in text
    assert 'rtcgate_drops_total{reason="stun_unknown_ufrag"} 2' in text
    assert "rtcgate_sessions 1" in text
    assert 'rtcgate_setup_phase_seconds_bucket{phase="selected_to_dtls",le="0.05"} 1' in text
    assert 'rtcgate_setup_phase_seconds_bucket{phase="selected_to_dtls",le="10.0"} 2' in text
    assert 'rtcgate_setup_phase_seconds_count{phase="selected_to_dtls"} 2' in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.split(" ")) == 2
