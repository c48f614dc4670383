"""The /metrics page: the core's counters published through prometheus_client, names and labels kept."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from reference_server.metrics import Metrics
from reference_server.relay.routing import RelayMetrics
from reference_server.shell.exposition import ProcessMemory, RelayCollector, render, server_registry


def samples(page: bytes) -> dict[tuple[str, frozenset], float]:
    """Every sample of a page, keyed by name and labels, read back with prometheus_client's parser."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(page.decode())
            for sample in family.samples}


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


def test_the_core_counters_keep_their_names_labels_and_types(tmp_path):
    m = Metrics()
    m.packets_received["stun"] += 3
    m.drops["stun_unknown_ufrag"] += 2
    m.sessions_closed["signaling"] += 1
    m.sessions = 1
    m.phases["selected_to_dtls"].observe(0.03)
    m.phases["selected_to_dtls"].observe(7.0)
    m.voice["model_think"].observe(0.2)
    page = render(server_registry(m, proc=str(tmp_path)))  # no /proc there: no process families
    got = samples(page)
    assert got[("rtcgate_packets_received_total", labels(kind="stun"))] == 3
    assert got[("rtcgate_drops_total", labels(reason="stun_unknown_ufrag"))] == 2
    assert got[("rtcgate_sessions_closed_total", labels(reason="signaling"))] == 1
    assert got[("rtcgate_sessions", labels())] == 1
    assert got[("rtcgate_sessions_created_total", labels())] == 0
    phase = "selected_to_dtls"
    assert got[("rtcgate_setup_phase_seconds_bucket", labels(phase=phase, le="0.025"))] == 0
    assert got[("rtcgate_setup_phase_seconds_bucket", labels(phase=phase, le="0.05"))] == 1
    assert got[("rtcgate_setup_phase_seconds_bucket", labels(phase=phase, le="10.0"))] == 2
    assert got[("rtcgate_setup_phase_seconds_bucket", labels(phase=phase, le="+Inf"))] == 2
    assert got[("rtcgate_setup_phase_seconds_count", labels(phase=phase))] == 2
    assert abs(got[("rtcgate_setup_phase_seconds_sum", labels(phase=phase))] - 7.03) < 1e-9
    assert got[("rtcgate_voice_turn_seconds_bucket", labels(part="model_think", le="0.2"))] == 1
    text = page.decode()
    assert "# TYPE rtcgate_drops_total counter" in text
    assert "# TYPE rtcgate_sessions gauge" in text
    assert "# TYPE rtcgate_setup_phase_seconds histogram" in text
    assert "process_" not in text


def fake_proc(root, resident_pages: int):
    """A /proc with what prometheus_client's ProcessCollector reads: btime and the process's stat."""
    (root / "self" / "fd").mkdir(parents=True)
    (root / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
    # proc(5) stat after the command: state ppid ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24)
    fields = ["S"] + ["0"] * 10 + ["250", "50"] + ["0"] * 6 + ["1000", "123456789", str(resident_pages)]
    (root / "self" / "stat").write_text("4242 (python) " + " ".join(fields) + "\n")
    return root


def test_resident_memory_is_the_standard_process_gauge_and_ours(tmp_path):
    import resource

    page = render(ProcessMemory(str(fake_proc(tmp_path, 2561))))
    got = samples(page)
    assert got[("process_resident_memory_bytes", labels())] == 2561 * resource.getpagesize()
    assert got[("rtcgate_process_resident_bytes", labels())] == 2561 * resource.getpagesize()
    assert got[("process_cpu_seconds_total", labels())] > 0
    assert samples(render(ProcessMemory(str(tmp_path / "absent")))) == {}  # no /proc: no gauges


def test_relay_counters_keep_their_names_and_labels():
    m = RelayMetrics()
    m.to_worker[0] += 5
    m.to_client[1] += 4
    m.drops["unknown_ufrag"] += 1
    m.routes_learned = 2
    m.routes_removed["idle"] += 1
    got = samples(render(RelayCollector(m, lambda: 7)))
    assert got[("rtcgate_relay_datagrams_total", labels(direction="to_worker", worker="0"))] == 5
    assert got[("rtcgate_relay_datagrams_total", labels(direction="to_client", worker="1"))] == 4
    assert got[("rtcgate_relay_drops_total", labels(reason="unknown_ufrag"))] == 1
    assert got[("rtcgate_relay_routes", labels())] == 7
    assert got[("rtcgate_relay_routes_learned_total", labels())] == 2
    assert got[("rtcgate_relay_routes_removed_total", labels(reason="idle"))] == 1
