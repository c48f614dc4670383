from __future__ import annotations

import json
import math

from tests.support.html_page import parse_page
from toolkit.load.accounting import StreamStats, aggregate, cdf_points, summarize
from toolkit.load.report import _drop_rates, write_report

MS = 1_000_000
HOSTILE = 'http://127.0.0.1:8080/whip?<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def media(rtts_ms: list[float], lost: int = 0) -> dict:
    stats = StreamStats()
    for seq, rtt in enumerate(rtts_ms):
        stats.on_sent(seq, seq * 20 * MS)
        stats.on_received(seq, seq * 20 * MS, seq * 20 * MS + int(rtt * MS))
    for seq in range(len(rtts_ms), len(rtts_ms) + lost):
        stats.on_sent(seq, seq * 20 * MS)
    stats.close((len(rtts_ms) + lost) * 20 * MS + 2_000 * MS)
    return {**aggregate([stats]).to_dict(), "cdf": cdf_points(stats.rtts_ns)}


def full_result() -> dict:
    phases = {phase: summarize([v * MS for v in values]).to_dict() for phase, values in
              {"signaling": [3, 4, 5], "ice": [1, 2, 2], "dtls": [8, 9, 30], "first_srtp": [20, 21, 22],
               "total": [33, 36, 60]}.items()}
    timeline = [{"t": t / 2, "sessions": 3, "rss_bytes": 60 * 2**20 + t * 4096,
                 "drops": {"garbage": 400 * max(0, t - 8), "no_session": 3 * t}} for t in range(30)]
    return {
        "target": HOSTILE,
        "started": "2026-11-25T21:00:00Z",
        "command": "rtcgate load --whip http://127.0.0.1:8080/whip --attack garbage@2000",
        "config": {"sessions": 3, "duration_s": 4, "pps": 50, "payload_bytes": 160,
                   "attacks": ["garbage@2000", "mix@500"]},
        "machine": {"cpus": 2, "python": "3.11.7", "platform": "Linux"},
        "setup": {"sessions": 3, "failed": 1, "errors": ["session 2: <timeout>"], "phases_ms": phases},
        "scenarios": [
            {"name": "quiet", "attack": None, "start_s": 0.5, "end_s": 4.5, "media": media([0.4, 0.5, 0.6, 2.0]),
             "server": {"sessions_start": 3, "sessions_end": 3, "sessions_max": 3, "rss_start_bytes": 62914560,
                        "rss_end_bytes": 62918656, "drops": {}}},
            {"name": "garbage@2000", "start_s": 5.0, "end_s": 9.0, "media": media([0.6, 0.9, 4.0, 12.0], lost=1),
             "attack": {"spec": "garbage@2000", "kinds": ["garbage"], "pps": 2000, "sent": 7990,
                        "sent_by_kind": {"garbage": 7990}, "replies": 0},
             "server": {"sessions_start": 3, "sessions_end": 3, "sessions_max": 3, "rss_start_bytes": None,
                        "rss_end_bytes": None, "drops": {'"><b>evil</b>': 7990}}},
            {"name": "<i>mix@500</i>", "start_s": 10.0, "end_s": 14.0, "media": media([0.5, 0.7]),
             "attack": {"spec": "mix@500", "kinds": ["garbage"], "pps": 500, "sent": 2000, "replies": 3},
             "server": {}},
        ],
        "server_timeline": timeline,
        "verdicts": [{"name": "quiet: no legit loss", "value": 0, "goal": "= 0", "ok": True},
                     {"name": "garbage@2000: legit p99 RTT / quiet p99", "value": 6.0, "goal": "< 2", "ok": False},
                     {"name": "mix@500: legit p99 RTT / quiet p99", "value": math.inf, "goal": "< 2", "ok": False}],
    }


def test_writes_json_and_a_well_formed_page(tmp_path):
    result = full_result()
    json_path, html_path = write_report(result, tmp_path / "deep" / "reports", stem="run1")
    assert (json_path.name, html_path.name) == ("run1.json", "run1.html")

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    document = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=no_constants)
    assert document["verdicts"][2]["value"] is None  # infinity has no JSON form
    assert document["scenarios"][1]["media"]["lost"] == 1
    assert document["target"] == HOSTILE
    page = parse_page(html_path)
    # setup phases, RTT CDF, sessions over time, drops/s over time, resident memory over time
    assert page.count("svg") == 5
    assert "FAILED" in "".join(page.text)


def test_page_is_self_contained_and_escapes_what_it_shows(tmp_path):
    _, html_path = write_report(full_result(), tmp_path)
    page = parse_page(html_path)
    names = {name for name, _ in page.tags}
    assert not names & {"script", "img", "link", "iframe", "b", "i", "object"}
    assert not [attrs for _, attrs in page.tags if {"src", "href", "onerror"} & set(attrs)]
    text = "".join(page.text)
    assert HOSTILE in text and '"><b>evil</b> 7990' in text and "<i>mix@500</i>" in text
    assert "session 2: <timeout>" in text


def test_plots_draw_one_line_per_scenario_and_shade_attacks(tmp_path):
    _, html_path = write_report(full_result(), tmp_path)
    page = parse_page(html_path)
    titles = [attrs.get("aria-label") for name, attrs in page.tags if name == "svg"]
    assert titles == ["Setup time per phase (p50 and p99)",
                      "RTT CDF per scenario (fraction of packets with RTT ≤ x)",
                      "Sessions the server holds", "Drops per second by reason", "Resident memory"]
    text = "".join(page.text)
    cdf_polylines = 3
    timeline_polylines = 1 + 2 + 1  # sessions; garbage and no_session drops; memory
    assert page.count("polyline") == cdf_polylines + timeline_polylines
    shaded = [attrs for name, attrs in page.tags if name == "rect" and attrs.get("fill-opacity") == "0.12"]
    assert len(shaded) == 2 * 3 * 2  # two attack windows, in three time charts, plus their legend swatches
    assert "quiet" in text and "0.1" in text and "10" in text  # log axis decades of the RTT CDF


def test_missing_rss_and_empty_scenarios(tmp_path):
    result = full_result()
    for sample in result["server_timeline"]:
        sample["rss_bytes"] = None
    result["scenarios"] = []
    result["verdicts"] = []
    _, html_path = write_report(result, tmp_path)
    page = parse_page(html_path)
    assert page.count("svg") == 3  # setup phases, sessions, drops: no RTTs, no memory
    text = "".join(page.text)
    assert "No scenario was measured." in text and "No RTT samples" in text and "no verdicts" in text


def test_bare_result_still_makes_a_page(tmp_path):
    json_path, html_path = write_report({"metrics_error": "GET /metrics answered 404"}, tmp_path)
    assert json.loads(json_path.read_text()) == {"metrics_error": "GET /metrics answered 404"}
    page = parse_page(html_path)
    assert page.count("svg") == 0
    text = "".join(page.text)
    assert "No server metrics were read: GET /metrics answered 404." in text
    assert "No setup phase times were recorded." in text


def test_drop_rates_per_reason_with_a_counter_reset():
    samples = [{"t": 0.0, "drops": {}}, {"t": 0.5, "drops": {"garbage": 100}},
               {"t": 1.5, "drops": {"garbage": 300, "auth": 1}}, {"t": 2.0, "drops": {"garbage": 50}}]
    series = {name: points for name, _, points in _drop_rates(samples)}
    assert series["garbage"] == [(0.5, 200.0), (1.5, 200.0), (2.0, 100.0)]  # 50 after 300: a restarted target
    assert series["auth"] == [(0.5, 0.0), (1.5, 1.0), (2.0, 0.0)]  # a reason not reported yet dropped nothing


def test_drop_rates_without_drops_is_one_flat_line():
    series = _drop_rates([{"t": 0.0, "drops": {}}, {"t": 1.0, "drops": {}}])
    assert [(name, points) for name, _, points in series] == [("no drops", [(1.0, 0.0)])]


def test_many_drop_reasons_fold_into_one_line():
    samples = [{"t": 0.0, "drops": {}}, {"t": 1.0, "drops": {f"r{i:02}": i + 1 for i in range(12)}}]
    names = [name for name, _, _ in _drop_rates(samples)]
    assert names == ["r11", "r10", "r09", "r08", "r07", "r06", "r05", "r04", "4 other reasons"]


def test_report_overwrites_the_previous_one(tmp_path):
    write_report({"target": "old-target"}, tmp_path, "nightly-800")
    json_path, html_path = write_report({"target": "new-target"}, tmp_path, "nightly-800")
    assert json.loads(json_path.read_text())["target"] == "new-target"
    assert "new-target" in html_path.read_text() and "old-target" not in html_path.read_text()


def test_speech_windows_show_voice_to_voice_columns(tmp_path):
    result = full_result()
    assert "voice-to-voice" not in "".join(parse_page(write_report(result, tmp_path)[1]).text)
    for scenario, turns in zip(result["scenarios"], ([700.0, 720.0], [710.0, 760.0], [705.0])):
        scenario["media"]["voice_to_voice"] = summarize([ms * MS for ms in turns]).to_dict()
    text = "".join(parse_page(write_report(result, tmp_path)[1]).text)
    assert "voice-to-voice p99 ms" in text and "760.0" in text
