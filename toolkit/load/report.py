"""The report of a load run: `<stem>.json` holds every figure, `<stem>.html` is one page to read
them on, self-contained (inline CSS and SVG; no scripts, no fonts, no network). This module
computes what the page shows (tables, chart geometry); templates/load.html.j2 and chart.svg.j2
(under toolkit/reports/, shared page style) lay it out, autoescaped.

The page: what was loaded and the verdicts; setup phase times; one row per scenario (quiet,
then each attack); RTT CDFs of all scenarios on one log axis; server state over time read from
/metrics (sessions, drops per second by reason, resident memory) with the attack windows shaded.
Keys the runner leaves out are shown as "–" or their plot is skipped with a sentence saying why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.reports.common import TOOL
from toolkit.reports.html import write_html
from toolkit.reports.json_report import write_json
from toolkit.reports.templating import Markup, render

PHASE_ORDER = ("signaling", "ice", "dtls", "first_srtp", "total")
COLORS = ("#222222", "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22")
"""Scenario colors in order: quiet first (near black), then each attack."""
MAX_DROP_REASONS = 8
"""Drop reasons plotted one line each, busiest first; the rest are summed into one line."""
MAX_ERRORS_SHOWN = 20
MIB = 1 << 20

def write_report(result: dict, out_dir: Path, stem: str = "load") -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.html` under `out_dir` (created if missing) with the reports'
    writers (JSON has no infinity or NaN: non-finite numbers are written as null); return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return (write_json(out_dir / f"{stem}.json", result),
            write_html(out_dir / f"{stem}.html", "load.html.j2", **page_context(result)))


def page_context(result: dict) -> dict:
    """What the page (templates/load.html.j2) shows: what this module computes, laid out and escaped there."""
    scenarios = [s for s in result.get("scenarios") or [] if isinstance(s, dict)]
    colors = {index: COLORS[index % len(COLORS)] for index in range(len(scenarios))}
    verdicts = [v for v in result.get("verdicts") or [] if isinstance(v, dict)]
    if not verdicts:
        outcome = "no verdicts"
    else:
        outcome = "PASSED" if all(v.get("ok") for v in verdicts) else "FAILED"
    return dict(tool=TOOL, outcome=outcome, target=str(result.get("target") or "unknown target"),
                header=_header(result), verdicts=[_verdict(v) for v in verdicts],
                setup=_setup(result.get("setup") or {}), media=_media_table(scenarios, colors),
                rtt_cdf=_rtt_cdf(scenarios, colors), server=_server_table(scenarios, colors),
                timeline=_timeline(result, scenarios, colors))


# -- sections --------------------------------------------------------------------------------


def _header(result: dict) -> dict:
    config = result.get("config") or {}
    machine = result.get("machine") or {}
    return {"target": _text(result.get("target")), "started": _text(result.get("started")),
            "sessions": _text(config.get("sessions")), "pps": _text(config.get("pps")),
            "payload_bytes": _text(config.get("payload_bytes")), "media": config.get("media"),
            "duration_s": _text(config.get("duration_s")), "attacks": [str(a) for a in config.get("attacks") or []],
            "seed": config.get("seed"), "cpus": _text(machine.get("cpus")), "python": _text(machine.get("python")),
            "platform": _text(machine.get("platform")), "command": result.get("command")}


def _verdict(verdict: dict) -> dict:
    return {"ok": bool(verdict.get("ok")), "name": _text(verdict.get("name")),
            "value": _text(_number(verdict.get("value"))), "goal": _text(verdict.get("goal"))}


def _setup(setup: dict) -> dict:
    errors = [str(error) for error in setup.get("errors") or []]
    phases = {name: summary for name, summary in (setup.get("phases_ms") or {}).items() if isinstance(summary, dict)}
    ordered = [p for p in PHASE_ORDER if p in phases] + [p for p in phases if p not in PHASE_ORDER]
    rows = [[name, _text(phases[name].get("count"))]
            + [_ms(phases[name].get(key)) for key in ("mean", "p50", "p90", "p99", "max")] for name in ordered]
    return {"sessions": _text(setup.get("sessions")), "failed": _text(setup.get("failed")),
            "errors": errors[:MAX_ERRORS_SHOWN], "more_errors": max(0, len(errors) - MAX_ERRORS_SHOWN),
            "phases": rows, "bars": _phase_bars(ordered, phases) if ordered else None}


def _media_table(scenarios: list[dict], colors: dict[int, str]) -> dict | None:
    if not scenarios:
        return None
    head = ["scenario", "sessions", "sent", "received", "lost", "loss", "worst session loss", "reordered",
            "duplicates", "late", "RTT p50 ms", "RTT p99 ms", "RTT p99.9 ms", "RTT max ms", "jitter p50 ms",
            "jitter max ms"]
    voice = any("voice_to_voice" in (scenario.get("media") or {}) for scenario in scenarios)
    if voice:
        head += ["turns answered", "voice-to-voice p50 ms", "voice-to-voice p99 ms"]
    rows = []
    rtcp = False
    for index, scenario in enumerate(scenarios):
        media = scenario.get("media") or {}
        rtt = media.get("rtt") or {}
        jitter = media.get("jitter") or {}
        rtcp = rtcp or media.get("rtt_source") == "rtcp"
        cells = [_text(media.get(key)) for key in ("sessions", "sent", "received", "lost")]
        cells += [_percent(media.get("loss_ratio")), _percent(media.get("worst_session_loss"))]
        cells += [_text(media.get(key)) for key in ("reordered", "duplicates", "late")]
        cells += [_ms(rtt.get(key)) for key in ("p50", "p99", "p999", "max")]
        cells += [_ms(jitter.get("p50")), _ms(jitter.get("max"))]
        if voice:
            v2v = media.get("voice_to_voice") or {}
            cells += [_text(v2v.get("count")), _ms(v2v.get("p50")), _ms(v2v.get("p99"))]
        rows.append({"scenario": _scenario_name(scenario), "color": colors[index], "cells": cells})
    note = ("Lost: no echo within the loss timeout; late: echoed after it (counted received, not lost); "
            "loss = lost / (received + lost); reordered: arrived after a higher sequence number; "
            "jitter: RFC 3550 estimator over consecutive RTTs, per session.")
    if rtcp:
        note += " RTT here comes from RTCP sender/receiver reports (a voice target does not echo)."
    if voice:
        note += (" Voice-to-voice: from our last loud packet of a turn to the first packet of the target's"
                 " next talkspurt.")
    return {"head": head, "rows": rows, "note": note}


def _server_table(scenarios: list[dict], colors: dict[int, str]) -> dict | None:
    if not scenarios:
        return None
    rows = []
    for index, scenario in enumerate(scenarios):
        server = scenario.get("server") or {}
        attack = scenario.get("attack") or {}
        drops = server.get("drops") or {}
        drop_text = ", ".join(f"{_text(reason)} {_text(count)}" for reason, count in
                              sorted(drops.items(), key=lambda item: -_as_float(item[1]))) or "none"
        cells = [f"{_number(scenario.get('start_s'))}–{_number(scenario.get('end_s'))}",
                 _text(attack.get("sent")), _text(attack.get("replies")),
                 *(_text(server.get(key)) for key in ("sessions_start", "sessions_end", "sessions_max")),
                 _mib(server.get("rss_start_bytes")), _mib(server.get("rss_end_bytes")), drop_text]
        rows.append({"scenario": _scenario_name(scenario), "color": colors[index], "cells": cells})
    head = ["scenario", "window s", "attack packets", "replies to attack", "sessions at start", "at end", "max",
            "RSS start MiB", "RSS end MiB", "drops during the scenario"]
    return {"head": head, "rows": rows}


def _rtt_cdf(scenarios: list[dict], colors: dict[int, str]) -> Markup | None:
    curves = []
    for index, scenario in enumerate(scenarios):
        points = [(float(ms), float(fraction)) for ms, fraction in (scenario.get("media") or {}).get("cdf") or []]
        if points:
            curves.append((_scenario_name(scenario), colors[index], points))
    if not curves:
        return None
    values = [ms for _, _, points in curves for ms, _ in points]
    x = _log_scale(values)
    y = _Scale(0.0, 1.0, [(v, f"{v:g}") for v in (0, 0.25, 0.5, 0.75, 0.9, 1.0)])
    chart = _Chart("RTT CDF per scenario (fraction of packets with RTT ≤ x)", x, y, "RTT, ms (log scale)",
                   "fraction")
    for name, color, points in curves:
        chart.step(points, color, name)
    return chart.render()


def _timeline(result: dict, scenarios: list[dict], colors: dict[int, str]) -> dict:
    """{"missing": False, "items": [{"chart": svg} or {"note": sentence}, ...]}; missing when no sample was read."""
    samples = sorted((s for s in result.get("server_timeline") or [] if isinstance(s, dict) and _is_number(s.get("t"))),
                     key=lambda s: s["t"])
    if not samples:
        return {"missing": True, "why": result.get("metrics_error")}
    end = max([samples[-1]["t"]] + [s["end_s"] for s in scenarios if _is_number(s.get("end_s"))])
    windows = [(s["start_s"], s["end_s"], _scenario_name(s), colors[i]) for i, s in enumerate(scenarios)
               if s.get("attack") and _is_number(s.get("start_s")) and _is_number(s.get("end_s"))]
    items: list[dict] = []

    def chart(title: str, y_label: str, series: list[tuple[str, str, list[tuple[float, float]]]]) -> Markup:
        high = max((v for _, _, points in series for _, v in points), default=0.0)
        plot = _Chart(title, _linear_scale(0.0, end), _linear_scale(0.0, high * 1.05), "seconds since the run started",
                      y_label)
        for start, stop, name, color in windows:
            plot.shade(start, stop, color, name)
        for name, color, points in series:
            plot.line(points, color, name)
        return plot.render()

    sessions = [(s["t"], s["sessions"]) for s in samples if _is_number(s.get("sessions"))]
    if sessions:
        items.append({"chart": chart("Sessions the server holds", "sessions", [("sessions", COLORS[0], sessions)])})
    else:
        items.append({"note": "The target reports no session gauge."})
    if len(samples) >= 2:
        items.append({"chart": chart("Drops per second by reason", "drops/s", _drop_rates(samples))})
    rss = [(s["t"], s["rss_bytes"] / MIB) for s in samples if _is_number(s.get("rss_bytes"))]
    if rss:
        items.append({"chart": chart("Resident memory", "MiB", [("resident memory", COLORS[2], rss)])})
    return {"missing": False, "items": items}


# -- data shaping ----------------------------------------------------------------------------


def _drop_rates(samples: list[dict]) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """Per-second rates between consecutive samples of cumulative counters, every reason at every
    sample (a reason not reported yet has dropped nothing); a counter that went down was reset (a
    restarted target), so its new value is the increase."""
    reasons: dict[str, list[tuple[float, float]]] = {
        reason: [] for sample in samples for reason in sample.get("drops") or {}}
    totals = dict.fromkeys(reasons, 0.0)
    for before, after in zip(samples, samples[1:]):
        elapsed = after["t"] - before["t"]
        if elapsed <= 0:
            continue
        old, new = before.get("drops") or {}, after.get("drops") or {}
        for reason, points in reasons.items():
            now, then = _as_float(new.get(reason, 0)), _as_float(old.get(reason, 0))
            increase = now - then if now >= then else now
            points.append((after["t"], increase / elapsed))
            totals[reason] += increase
    if not reasons:
        times = [s["t"] for s in samples[1:]]
        return [("no drops", COLORS[4], [(t, 0.0) for t in times])]
    busiest = sorted(reasons, key=lambda reason: (-totals[reason], reason))
    series = [(reason, COLORS[(i + 1) % len(COLORS)], reasons[reason])
              for i, reason in enumerate(busiest[:MAX_DROP_REASONS])]
    rest = busiest[MAX_DROP_REASONS:]
    if rest:
        summed: dict[float, float] = {}
        for reason in rest:
            for t, rate in reasons[reason]:
                summed[t] = summed.get(t, 0.0) + rate
        series.append((f"{len(rest)} other reasons", "#999999", sorted(summed.items())))
    return series


# -- plotting --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Scale:
    """Data range → [0, 1] of the plot area, with its tick values and labels."""

    low: float
    high: float
    ticks: list[tuple[float, str]]
    log: bool = False

    def fraction(self, value: float) -> float:
        if self.log:
            value = math.log10(max(value, self.low))
            low, high = math.log10(self.low), math.log10(self.high)
        else:
            low, high = self.low, self.high
        return min(1.0, max(0.0, (value - low) / (high - low)))


def _linear_scale(low: float, high: float) -> _Scale:
    """From `low` up to a round number at or above `high`, ticks at 1, 2 or 5 × 10^k."""
    span = high - low if high > low else 1.0
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    count = math.ceil(span / step - 1e-9)
    ticks = [(low + i * step, _tick_label(low + i * step)) for i in range(count + 1)]
    return _Scale(low, low + count * step, ticks)


def _log_scale(values: Iterable[float]) -> _Scale:
    """Whole decades around the positive values; 2 and 5 between them when there are few decades."""
    positive = [v for v in values if v > 0] or [1.0]
    low = 10.0 ** math.floor(math.log10(min(positive)))
    high = 10.0 ** math.ceil(math.log10(max(positive)))
    if high <= low:
        high = low * 10
    decades = round(math.log10(high / low))
    ticks = []
    for k in range(decades + 1):
        decade = low * 10 ** k
        ticks.append((decade, _tick_label(decade)))
        if decades <= 3 and k < decades:
            ticks += [(decade * m, _tick_label(decade * m)) for m in (2, 5)]
    return _Scale(low, high, sorted(ticks), log=True)


def _tick_label(value: float) -> str:
    return f"{float(f'{value:.6g}'):g}"


@dataclass
class _Chart:
    """One SVG plot: axes with gridlines, lines, shaded spans and a legend on the right. This
    computes the geometry; templates/chart.svg.j2 draws it."""

    title: str
    x: _Scale
    y: _Scale
    x_label: str
    y_label: str
    width: int = 820
    height: int = 300
    left: int = 64
    right: int = 190
    top: int = 34
    bottom: int = 46
    _marks: list[dict] = field(default_factory=list)
    _legend: list[tuple[str, str, str]] = field(default_factory=list)

    def _px(self, x: float, y: float) -> tuple[float, float]:
        plot_width = self.width - self.left - self.right
        plot_height = self.height - self.top - self.bottom
        return (self.left + self.x.fraction(x) * plot_width, self.top + (1 - self.y.fraction(y)) * plot_height)

    def line(self, points: list[tuple[float, float]], color: str, name: str) -> None:
        pixels = [self._px(x, y) for x, y in points]
        self._polyline(pixels, color)
        if len(pixels) == 1:
            self._marks.append({"kind": "circle", "cx": _px(pixels[0][0]), "cy": _px(pixels[0][1]), "fill": color})
        self._legend.append((name, color, "line"))

    def step(self, points: list[tuple[float, float]], color: str, name: str) -> None:
        """A CDF: flat until the next value, then up to its fraction; starts from 0 at the first value."""
        pixels = [self._px(points[0][0], 0.0)]
        previous = 0.0
        for x, y in points:
            pixels += [self._px(x, previous), self._px(x, y)]
            previous = y
        self._polyline(pixels, color)
        self._legend.append((name, color, "line"))

    def shade(self, start: float, stop: float, color: str, name: str) -> None:
        (x0, y0), (x1, y1) = self._px(start, self.y.high), self._px(stop, self.y.low)
        self._marks.insert(0, {"kind": "rect", "x": _px(x0), "y": _px(y0), "width": _px(max(x1 - x0, 1)),
                               "height": _px(y1 - y0), "fill": color, "opacity": "0.12"})
        self._legend.append((name, color, "span"))

    def bar(self, x0: float, x1: float, y0: float, y1: float, color: str, label: str) -> None:
        (px0, py0), (px1, py1) = self._px(x0, y1), self._px(x1, y0)
        self._marks.append({"kind": "rect", "x": _px(px0), "y": _px(py0), "width": _px(max(px1 - px0, 1)),
                            "height": _px(py1 - py0), "fill": color, "opacity": None})
        self._marks.append({"kind": "text", "x": _px(px0 + max(px1 - px0, 1) + 4), "y": _px((py0 + py1) / 2 + 4),
                            "text": label})

    def legend_entry(self, name: str, color: str, kind: str) -> None:
        self._legend.append((name, color, kind))

    def _polyline(self, pixels: list[tuple[float, float]], color: str) -> None:
        self._marks.append({"kind": "polyline", "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in pixels),
                            "stroke": color})

    def render(self, y_grid: bool = True) -> Markup:
        right_edge, base = self.width - self.right, self.height - self.bottom
        canvas_height = max(self.height, self.top + 18 * len(self._legend) + 8)  # a long legend runs below the plot
        x_ticks = [{"x": _px(self._px(value, self.y.low)[0]), "label": label} for value, label in self.x.ticks]
        y_ticks = [{"y": _px(self._px(self.x.low, value)[1]), "label": label} for value, label in self.y.ticks]
        legend = [{"name": _shorten(name), "color": color, "kind": kind, "x": right_edge + 14,
                   "y": self.top + 8 + row * 18} for row, (name, color, kind) in enumerate(self._legend)]
        return Markup(render("chart.svg.j2", chart=self, canvas_height=canvas_height, right_edge=right_edge,
                             base=base, x_ticks=x_ticks, y_ticks=y_ticks, y_grid=y_grid, marks=self._marks,
                             legend=legend, x_label_x=_px((self.left + right_edge) / 2),
                             y_label_y=_px((self.top + base) / 2)))


def _px(value: float) -> str:
    """A pixel coordinate as the SVG gets it: one decimal."""
    return f"{value:.1f}"


def _phase_bars(ordered: list[str], phases: dict[str, dict]) -> Markup:
    """Per phase two bars, p50 above p99, on a shared linear ms axis."""
    high = max((_as_float(phases[p].get(k)) for p in ordered for k in ("p50", "p99")), default=0.0)
    count = len(ordered)
    y = _Scale(0.0, float(count), [(count - i - 0.5, name) for i, name in enumerate(ordered)])
    # 15 % headroom: each bar's value is written past its end.
    chart = _Chart("Setup time per phase (p50 and p99)", _linear_scale(0.0, high * 1.15), y, "ms", "",
                   height=70 + 34 * count, left=90)
    shades = {"p50": "#7aa6d6", "p99": "#1f4e8c"}
    for i, name in enumerate(ordered):
        row = count - i - 1
        for offset, key in ((0.5, "p50"), (0.1, "p99")):
            value = phases[name].get(key)
            if _is_number(value):
                chart.bar(0.0, value, row + offset, row + offset + 0.38, shades[key], _ms(value))
    for key, color in shades.items():
        chart.legend_entry(key, color, "box")
    return chart.render(y_grid=False)


# -- formatting ------------------------------------------------------------------------------


def _text(value: object) -> str:
    """What a cell shows: the value, or "–" for none (the template escapes it)."""
    return "–" if value is None else str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_float(value: object) -> float:
    return float(value) if _is_number(value) else 0.0


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    return "–" if value is None else str(value)


def _ms(value: object) -> str:
    if not _is_number(value):
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _percent(value: object) -> str:
    if not _is_number(value):
        return "–"
    percent = value * 100
    return "0 %" if percent == 0 else f"{percent:.3g} %"


def _mib(value: object) -> str:
    return f"{value / MIB:.1f}" if _is_number(value) else "–"


def _shorten(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _scenario_name(scenario: dict) -> str:
    return str(scenario.get("name") or "unnamed")
