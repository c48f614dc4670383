"""The report of a load run: `<stem>.json` holds every figure, `<stem>.html` is one page to read
them on, self-contained (inline CSS and SVG drawn here; no scripts, no fonts, no network).

The page: what was loaded and the verdicts; setup phase times; one row per scenario (quiet,
then each attack); RTT CDFs of all scenarios on one log axis; server state over time read from
/metrics (sessions, drops per second by reason, resident memory) with the attack windows shaded.
Keys the runner leaves out are shown as "–" or their plot is skipped with a sentence saying why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from toolkit.reports.common import TOOL

PHASE_ORDER = ("signaling", "ice", "dtls", "first_srtp", "total")
COLORS = ("#222222", "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22")
"""Scenario colors in order: quiet first (near black), then each attack."""
MAX_DROP_REASONS = 8
"""Drop reasons plotted one line each, busiest first; the rest are summed into one line."""
MAX_ERRORS_SHOWN = 20
MIB = 1 << 20

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
td{white-space:nowrap} .server td:last-child{white-space:normal;text-align:left}
th:first-child,td:first-child{text-align:left} thead th{background:#f3f3f3}
.ok{color:#176f2c}.fail{color:#b00020} .verdicts{list-style:none;padding-left:0} .verdicts li{margin:2px 0}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
code{background:#f6f6f6;padding:1px 4px} .note{color:#666} svg{display:block;margin:.6em 0 1.2em}
svg text{font:11px system-ui,sans-serif;fill:#333} svg .title{font-size:13px;font-weight:600}
"""


def write_report(result: dict, out_dir: Path, stem: str = "load") -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.html` under `out_dir` (created if missing); return both paths.
    JSON has no infinity or NaN, so non-finite numbers are written as null."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / f"{stem}.json", out_dir / f"{stem}.html"
    json_path.write_text(json.dumps(_finite(result), indent=2) + "\n", encoding="utf-8")
    html_path.write_text(render_html(result), encoding="utf-8")
    return json_path, html_path


def render_html(result: dict) -> str:
    scenarios = [s for s in result.get("scenarios") or [] if isinstance(s, dict)]
    colors = {index: COLORS[index % len(COLORS)] for index in range(len(scenarios))}
    verdicts = result.get("verdicts") or []
    if not verdicts:
        outcome = "no verdicts"
    else:
        outcome = "PASSED" if all(v.get("ok") for v in verdicts) else "FAILED"
    target = str(result.get("target") or "unknown target")
    body = [
        f"<h1>{TOOL} load — {outcome}</h1>",
        _header(result, verdicts),
        "<h2>Session setup</h2>", _setup(result.get("setup") or {}),
        "<h2>Legit media per scenario</h2>", _media_table(scenarios, colors),
        "<h2>RTT distribution</h2>", _rtt_cdf(scenarios, colors),
        "<h2>Server during each scenario</h2>", _server_table(scenarios, colors),
        "<h2>Server state over time</h2>", _timeline(result, scenarios, colors),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{TOOL} load: {escape(target)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


# -- sections --------------------------------------------------------------------------------


def _header(result: dict, verdicts: list) -> str:
    config = result.get("config") or {}
    machine = result.get("machine") or {}
    attacks = config.get("attacks") or []
    facts = [
        f"Target: <code>{_e(result.get('target'))}</code>",
        f"Started {_e(result.get('started'))}; {_e(config.get('sessions'))} sessions, "
        f"{_e(config.get('pps'))} packets/s each of {_e(config.get('payload_bytes'))} bytes"
        + (f" ({_e(config['media'])} media)" if config.get("media") else "")
        + f", {_e(config.get('duration_s'))} s per scenario",
        "Attacks: " + (", ".join(f"<code>{_e(a)}</code>" for a in attacks) if attacks else "none")
        + (f", seed {_e(config['seed'])}" if "seed" in config else ""),
        f"Machine: {_e(machine.get('cpus'))} CPUs, Python {_e(machine.get('python'))}, {_e(machine.get('platform'))}",
    ]
    if result.get("command"):
        facts.append(f"Command: <code>{_e(result['command'])}</code>")
    lines = [f"<p>{'<br>'.join(facts)}</p>"]
    if verdicts:
        items = []
        for verdict in verdicts:
            ok = bool(verdict.get("ok"))
            items.append(f'<li class="{"ok" if ok else "fail"}">{"✓" if ok else "✗"} {_e(verdict.get("name"))}: '
                         f"{_e(_number(verdict.get('value')))} (goal {_e(verdict.get('goal'))})</li>")
        lines.append(f'<ul class="verdicts">{"".join(items)}</ul>')
    return "\n".join(lines)


def _setup(setup: dict) -> str:
    failed = setup.get("failed")
    parts = [f"<p>{_e(setup.get('sessions'))} sessions asked for, {_e(failed)} failed.</p>"]
    errors = setup.get("errors") or []
    if errors:
        shown = "".join(f"<li><code>{_e(error)}</code></li>" for error in errors[:MAX_ERRORS_SHOWN])
        more = f"<li>… {len(errors) - MAX_ERRORS_SHOWN} more</li>" if len(errors) > MAX_ERRORS_SHOWN else ""
        parts.append(f"<ul>{shown}{more}</ul>")
    phases = {name: summary for name, summary in (setup.get("phases_ms") or {}).items() if isinstance(summary, dict)}
    if not phases:
        parts.append('<p class="note">No setup phase times were recorded.</p>')
        return "\n".join(parts)
    ordered = [p for p in PHASE_ORDER if p in phases] + [p for p in phases if p not in PHASE_ORDER]
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{_e(phases[name].get('count'))}</td>"
                   + "".join(f"<td>{_ms(phases[name].get(key))}</td>" for key in ("mean", "p50", "p90", "p99", "max"))
                   + "</tr>" for name in ordered)
    parts.append("<table><thead><tr><th>phase</th><th>sessions</th><th>mean ms</th><th>p50 ms</th>"
                 f"<th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append(_phase_bars(ordered, phases))
    return "\n".join(parts)


def _media_table(scenarios: list[dict], colors: dict[int, str]) -> str:
    if not scenarios:
        return '<p class="note">No scenario was measured.</p>'
    head = ("scenario", "sessions", "sent", "received", "lost", "loss", "worst session loss", "reordered",
            "duplicates", "late", "RTT p50 ms", "RTT p99 ms", "RTT p99.9 ms", "RTT max ms", "jitter p50 ms",
            "jitter max ms")
    voice = any("voice_to_voice" in (scenario.get("media") or {}) for scenario in scenarios)
    if voice:
        head += ("turns answered", "voice-to-voice p50 ms", "voice-to-voice p99 ms")
    rows = []
    rtcp = False
    for index, scenario in enumerate(scenarios):
        media = scenario.get("media") or {}
        rtt = media.get("rtt") or {}
        jitter = media.get("jitter") or {}
        rtcp = rtcp or media.get("rtt_source") == "rtcp"
        cells = [_scenario_cell(scenario, colors[index])]
        cells += [_e(media.get(key)) for key in ("sessions", "sent", "received", "lost")]
        cells += [_percent(media.get("loss_ratio")), _percent(media.get("worst_session_loss"))]
        cells += [_e(media.get(key)) for key in ("reordered", "duplicates", "late")]
        cells += [_ms(rtt.get(key)) for key in ("p50", "p99", "p999", "max")]
        cells += [_ms(jitter.get("p50")), _ms(jitter.get("max"))]
        if voice:
            v2v = media.get("voice_to_voice") or {}
            cells += [_e(v2v.get("count")), _ms(v2v.get("p50")), _ms(v2v.get("p99"))]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    note = ("Lost: no echo within the loss timeout; late: echoed after it (counted received, not lost); "
            "loss = lost / (received + lost); reordered: arrived after a higher sequence number; "
            "jitter: RFC 3550 estimator over consecutive RTTs, per session.")
    if rtcp:
        note += " RTT here comes from RTCP sender/receiver reports (a voice target does not echo)."
    if voice:
        note += (" Voice-to-voice: from our last loud packet of a turn to the first packet of the target's"
                 " next talkspurt.")
    return (f"<table><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table><p class=\"note\">{note}</p>")


def _server_table(scenarios: list[dict], colors: dict[int, str]) -> str:
    if not scenarios:
        return '<p class="note">No scenario was measured.</p>'
    rows = []
    for index, scenario in enumerate(scenarios):
        server = scenario.get("server") or {}
        attack = scenario.get("attack") or {}
        drops = server.get("drops") or {}
        drop_text = ", ".join(f"{_e(reason)} {_e(count)}" for reason, count in
                              sorted(drops.items(), key=lambda item: -_as_float(item[1]))) or "none"
        cells = [_scenario_cell(scenario, colors[index]),
                 f"{_number(scenario.get('start_s'))}–{_number(scenario.get('end_s'))}",
                 _e(attack.get("sent")), _e(attack.get("replies")),
                 *(_e(server.get(key)) for key in ("sessions_start", "sessions_end", "sessions_max")),
                 _mib(server.get("rss_start_bytes")), _mib(server.get("rss_end_bytes")), drop_text]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = ("scenario", "window s", "attack packets", "replies to attack", "sessions at start", "at end", "max",
            "RSS start MiB", "RSS end MiB", "drops during the scenario")
    return (f"<table class=\"server\"><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _rtt_cdf(scenarios: list[dict], colors: dict[int, str]) -> str:
    curves = []
    for index, scenario in enumerate(scenarios):
        points = [(float(ms), float(fraction)) for ms, fraction in (scenario.get("media") or {}).get("cdf") or []]
        if points:
            curves.append((_scenario_name(scenario), colors[index], points))
    if not curves:
        return '<p class="note">No RTT samples, so no distribution to plot.</p>'
    values = [ms for _, _, points in curves for ms, _ in points]
    x = _log_scale(values)
    y = _Scale(0.0, 1.0, [(v, f"{v:g}") for v in (0, 0.25, 0.5, 0.75, 0.9, 1.0)])
    chart = _Chart("RTT CDF per scenario (fraction of packets with RTT ≤ x)", x, y, "RTT, ms (log scale)",
                   "fraction")
    for name, color, points in curves:
        chart.step(points, color, name)
    return chart.render()


def _timeline(result: dict, scenarios: list[dict], colors: dict[int, str]) -> str:
    samples = sorted((s for s in result.get("server_timeline") or [] if isinstance(s, dict) and _is_number(s.get("t"))),
                     key=lambda s: s["t"])
    if not samples:
        why = result.get("metrics_error")
        return f'<p class="note">No server metrics were read{": " + _e(why) if why else ""}.</p>'
    end = max([samples[-1]["t"]] + [s["end_s"] for s in scenarios if _is_number(s.get("end_s"))])
    windows = [(s["start_s"], s["end_s"], _scenario_name(s), colors[i]) for i, s in enumerate(scenarios)
               if s.get("attack") and _is_number(s.get("start_s")) and _is_number(s.get("end_s"))]
    charts = []

    def chart(title: str, y_label: str, series: list[tuple[str, str, list[tuple[float, float]]]]) -> str:
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
        charts.append(chart("Sessions the server holds", "sessions", [("sessions", COLORS[0], sessions)]))
    else:
        charts.append('<p class="note">The target reports no session gauge.</p>')
    if len(samples) >= 2:
        charts.append(chart("Drops per second by reason", "drops/s", _drop_rates(samples)))
    rss = [(s["t"], s["rss_bytes"] / MIB) for s in samples if _is_number(s.get("rss_bytes"))]
    if rss:
        charts.append(chart("Resident memory", "MiB", [("resident memory", COLORS[2], rss)]))
    return "\n".join(charts)


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
    """One SVG plot: axes with gridlines, lines, shaded spans and a legend on the right."""

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
    _marks: list[str] = field(default_factory=list)
    _legend: list[tuple[str, str, str]] = field(default_factory=list)

    def _px(self, x: float, y: float) -> tuple[float, float]:
        plot_width = self.width - self.left - self.right
        plot_height = self.height - self.top - self.bottom
        return (self.left + self.x.fraction(x) * plot_width, self.top + (1 - self.y.fraction(y)) * plot_height)

    def line(self, points: list[tuple[float, float]], color: str, name: str) -> None:
        pixels = [self._px(x, y) for x, y in points]
        self._polyline(pixels, color)
        if len(pixels) == 1:
            self._marks.append(f'<circle cx="{pixels[0][0]:.1f}" cy="{pixels[0][1]:.1f}" r="3" fill="{color}"/>')
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
        self._marks.insert(0, f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 1):.1f}" '
                              f'height="{y1 - y0:.1f}" fill="{color}" fill-opacity="0.12"/>')
        self._legend.append((name, color, "span"))

    def bar(self, x0: float, x1: float, y0: float, y1: float, color: str, label: str) -> None:
        (px0, py0), (px1, py1) = self._px(x0, y1), self._px(x1, y0)
        self._marks.append(f'<rect x="{px0:.1f}" y="{py0:.1f}" width="{max(px1 - px0, 1):.1f}" '
                           f'height="{py1 - py0:.1f}" fill="{color}"/>')
        self._marks.append(f'<text x="{px0 + max(px1 - px0, 1) + 4:.1f}" y="{(py0 + py1) / 2 + 4:.1f}">'
                           f"{_e(label)}</text>")

    def legend_entry(self, name: str, color: str, kind: str) -> None:
        self._legend.append((name, color, kind))

    def _polyline(self, pixels: list[tuple[float, float]], color: str) -> None:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pixels)
        self._marks.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8" '
                           'stroke-linejoin="round"/>')

    def render(self, y_grid: bool = True) -> str:
        right_edge, base = self.width - self.right, self.height - self.bottom
        canvas_height = max(self.height, self.top + 18 * len(self._legend) + 8)  # a long legend runs below the plot
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{canvas_height}" '
                 f'viewBox="0 0 {self.width} {canvas_height}" role="img" aria-label="{_e(self.title)}">',
                 f"<title>{_e(self.title)}</title>",
                 f'<text class="title" x="{self.left}" y="20">{_e(self.title)}</text>']
        for value, label in self.x.ticks:
            x, _ = self._px(value, self.y.low)
            parts.append(f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{base}" stroke="#e5e5e5"/>')
            parts.append(f'<text x="{x:.1f}" y="{base + 15}" text-anchor="middle">{_e(label)}</text>')
        for value, label in self.y.ticks:
            _, y = self._px(self.x.low, value)
            if y_grid:
                parts.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{right_edge}" y2="{y:.1f}" stroke="#e5e5e5"/>')
            parts.append(f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(label)}</text>')
        parts += self._marks
        parts.append(f'<rect x="{self.left}" y="{self.top}" width="{right_edge - self.left}" '
                     f'height="{base - self.top}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="{(self.left + right_edge) / 2:.1f}" y="{self.height - 8}" '
                     f'text-anchor="middle">{_e(self.x_label)}</text>')
        parts.append(f'<text transform="translate(14 {(self.top + base) / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle">{_e(self.y_label)}</text>')
        for row, (name, color, kind) in enumerate(self._legend):
            y = self.top + 8 + row * 18
            x = right_edge + 14
            if kind == "line":
                parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{color}" stroke-width="2.5"/>')
            else:
                parts.append(f'<rect x="{x}" y="{y - 6}" width="18" height="12" fill="{color}" '
                             f'fill-opacity="{0.12 if kind == "span" else 1}" stroke="{color}"/>')
            parts.append(f'<text x="{x + 24}" y="{y + 4}">{_e(_shorten(name))}</text>')
        parts.append("</svg>")
        return "".join(parts)


def _phase_bars(ordered: list[str], phases: dict[str, dict]) -> str:
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


def _e(value: object) -> str:
    return "–" if value is None else escape(str(value))


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


def _scenario_cell(scenario: dict, color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>{_e(_scenario_name(scenario))}'


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
