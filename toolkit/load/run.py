"""One load run: set up N legit sessions, keep their media flowing at a fixed rate, and measure
it in windows — quiet first, then under each attack mix — while /metrics is read over time.

The media of every session runs off one ticker: the 20 ms packet interval is cut into slots
and each session sends in its own slot, so 800 sessions make an even 40 kpps, not bursts.
Every loop here is bounded: the windows by their duration, the attacks by count and time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from toolkit.load.accounting import PROBE_HEADER, LoadError, aggregate, cdf_points, summarize
from toolkit.load.attacks import AttackContext, AttackSender, AttackSpec, BoundTuple
from toolkit.load.metrics_poll import MetricsPoller
from toolkit.load.sessions import LoadSession, open_session
from toolkit.peer.offer import PeerError

TICK_SLOTS = 10
"""Slots per packet interval: the ticker wakes every interval / TICK_SLOTS."""
P99_GOAL = 2.0
"""PERF-02's default: legit p99 RTT under attack below twice the quiet p99."""
GOLDEN_FRACTION = 0.6180339887
"""Successive multiples of it, modulo 1, spread evenly over [0, 1) for any number of sessions."""
PHASES = ("signaling", "first_stun", "ice", "dtls", "first_srtp", "total")


@dataclass
class LoadConfig:
    whip_url: str
    sessions: int = 10
    duration: float = 10.0
    """Seconds per measured window (the quiet one and each attack's)."""
    attacks: tuple[AttackSpec, ...] = ()
    pps: float = 50.0
    payload_bytes: int = 160
    media: str = "probe"
    local_host: str = "127.0.0.1"
    remote: tuple[str, int] | None = None
    """Send to this address instead of the answer's candidates."""
    metrics_url: str | None = None
    """Defaults to /metrics on the WHIP URL's origin."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra HTTP headers of every WHIP request (an Authorization, say)."""
    setup_concurrency: int = 16
    setup_timeout: float = 10.0
    consent_interval: float = 5.0
    """Seconds between the sessions' ICE consent checks (RFC 7675 asks for 4–6 s); shorter for
    targets with a short consent timeout."""
    loss_timeout: float = 1.0
    """A probe not echoed within this many seconds is lost. Windows are this far apart (unmeasured:
    the last echoes come home, an attack's backlog drains)."""
    turn_silence: float = 2.0
    """Speech media: seconds of silence after each utterance (the answer comes in them)."""
    stagger_turns: bool = True
    """Speech media: each session starts at another point of its turn (golden-ratio spread), as
    independent callers do; False starts them all at once, so every window holds one turn each."""
    turn_packets: int | None = None
    """Speech media: say only the sample's first packets each turn (None: all of it)."""
    source_ports: int = 64
    seed: int = 0
    p99_goal: float = P99_GOAL
    command: str = ""

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise LoadError(f"--sessions must be at least 1, not {self.sessions}")
        if not 0 < self.duration <= 3600:
            raise LoadError(f"--duration must be in (0, 3600] seconds, not {self.duration:g}")
        if self.media == "probe" and self.payload_bytes < PROBE_HEADER.size:
            raise LoadError(f"--payload-bytes must be at least {PROBE_HEADER.size} for probe media "
                            f"(the probe header), not {self.payload_bytes}")
        if not 0 < self.pps <= 1000:
            raise LoadError(f"--pps must be in (0, 1000] packets per second per session, not {self.pps:g}")
        if self.metrics_url is None:
            parts = urlsplit(self.whip_url)
            self.metrics_url = f"{parts.scheme}://{parts.netloc}/metrics"


@dataclass
class Progress:
    """What the live display shows; the runner updates it, the CLI prints it."""

    phase: str = "setup"
    window: str = ""
    window_elapsed: float = 0.0
    window_length: float = 0.0
    sessions_up: int = 0
    sessions_failed: int = 0
    sent: int = 0
    received: int = 0
    attack_sent: int = 0


class LoadRun:
    def __init__(self, config: LoadConfig, on_progress: Callable[[Progress], None] | None = None,
                 on_window: Callable[[str, str], None] | None = None) -> None:
        """`on_progress` gets the live figures once a second; `on_window(name, "start" | "end")`
        is called at the edges of each measured window (benchmarks sample CPU there)."""
        self.config = config
        self.progress = Progress()
        self._on_progress = on_progress or (lambda progress: None)
        self._on_window = on_window or (lambda name, edge: None)
        self.sessions: list[LoadSession] = []
        self.setup_errors: list[str] = []
        self._ticker: asyncio.TimerHandle | None = None

    async def run(self) -> dict:
        config = self.config
        loop = asyncio.get_running_loop()
        started = loop.time()
        started_wall = datetime.datetime.now(datetime.UTC)
        same_origin = urlsplit(config.metrics_url)[:2] == urlsplit(config.whip_url)[:2]
        poller = MetricsPoller(config.metrics_url, started,  # the WHIP headers go to the WHIP origin only
                               headers=dict(config.headers) if same_origin else {})
        poller.start()
        display = loop.create_task(self._display())
        try:
            await self._open_sessions()
            self._start_media(loop)
            scenarios = [await self._window("quiet", None, started, poller)]
            for spec in config.attacks:
                scenarios.append(await self._window(str(spec), spec, started, poller))
        finally:
            self._stop_media()
            display.cancel()
            await poller.stop()
            await asyncio.gather(*(session.close() for session in self.sessions), return_exceptions=True)
        return {
            "target": config.whip_url,
            "started": started_wall.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": config.command,
            "config": {"sessions": config.sessions, "duration_s": config.duration, "pps": config.pps,
                       "payload_bytes": config.payload_bytes, "media": config.media,
                       "attacks": [str(spec) for spec in config.attacks], "seed": config.seed},
            "machine": machine_facts(),
            "setup": self._setup_summary(),
            "scenarios": [scenario for scenario, _ in scenarios],
            "server_timeline": [sample.as_dict() for sample in poller.timeline],
            "metrics_error": poller.error,
            "verdicts": verdicts(scenarios, config.p99_goal),
        }

    # -- setup ------------------------------------------------------------------------------

    async def _open_sessions(self) -> None:
        config = self.config
        speech = None
        if config.media == "speech":
            from toolkit.peer.audio import speech_sample

            speech = speech_sample()
            if config.turn_packets is not None:
                speech = speech.cut(config.turn_packets)
        gate = asyncio.Semaphore(config.setup_concurrency)

        async def one(index: int) -> None:
            async with gate:
                try:
                    session = await open_session(
                        config.whip_url, index, media=config.media, speech=speech,
                        payload_bytes=config.payload_bytes, local_host=config.local_host,
                        timeout=config.setup_timeout, loss_timeout_ns=int(config.loss_timeout * 1e9),
                        consent_interval=config.consent_interval, remote=config.remote,
                        turn_silence=config.turn_silence, headers=dict(config.headers),
                        turn_phase=index * GOLDEN_FRACTION if config.stagger_turns else 0.0)
                except (PeerError, OSError) as exc:
                    self.setup_errors.append(f"session {index}: {exc}")
                    self.progress.sessions_failed += 1
                    return
                self.sessions.append(session)
                self.progress.sessions_up += 1

        await asyncio.gather(*(one(index) for index in range(config.sessions)))
        self.sessions.sort(key=lambda session: session.index)
        if not self.sessions:
            first = self.setup_errors[0] if self.setup_errors else "no reason given"
            raise LoadError(f"no session could be set up against {config.whip_url}: {first}")

    def _setup_summary(self) -> dict:
        times = [session.setup.as_dict() for session in self.sessions if session.setup is not None]
        return {
            "sessions": self.config.sessions,
            "failed": len(self.setup_errors),
            "errors": self.setup_errors[:20],
            "phases_ms": {phase: summarize([int(t[phase] * 1e9) for t in times]).to_dict() for phase in PHASES},
            "first_srtp_is": "the echo of our first packet" if self.config.media == "probe" else
            "the first packet of the answer to our first utterance (speaking it included)",
        }

    # -- media ------------------------------------------------------------------------------

    def _start_media(self, loop: asyncio.AbstractEventLoop) -> None:
        interval = 1.0 / self.config.pps
        slots = [self.sessions[slot::TICK_SLOTS] for slot in range(TICK_SLOTS)]
        step = interval / TICK_SLOTS
        origin = loop.time()
        reports_every = max(1, round(self.config.pps))  # one RTCP SR per second per session
        speech = self.config.media == "speech"
        tick = 0

        def on_tick() -> None:
            nonlocal tick
            for session in slots[tick % TICK_SLOTS]:
                if session.connection.peer.state != "connected":
                    continue
                session.send()
                if speech and (tick // TICK_SLOTS) % reports_every == 0:
                    session.send_sender_report()
            tick += 1
            when = origin + tick * step
            now = loop.time()
            if when < now - interval:  # the loop fell behind by a whole interval: skip, don't burst
                skipped = int((now - when) / step)
                tick += skipped
                when = origin + tick * step
            self._ticker = loop.call_at(when, on_tick)

        self._ticker = loop.call_at(origin, on_tick)

    def _stop_media(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    # -- windows ----------------------------------------------------------------------------

    async def _window(self, name: str, spec: AttackSpec | None, started: float,
                      poller: MetricsPoller) -> tuple[dict, list]:
        config = self.config
        loop = asyncio.get_running_loop()
        progress = self.progress
        progress.phase, progress.window, progress.window_length = "measuring", name, config.duration
        sender = None
        attack_task = None
        if spec is not None:  # prepared before the window opens: preparing stalls this event loop
            context = self._attack_context()
            sender = AttackSender(spec, context, source_ports=config.source_ports,
                                  local_host=config.local_host, max_seconds=config.duration,
                                  max_packets=int(spec.pps * config.duration * 1.05) + 1,
                                  rng=random.Random(config.seed))
        start = loop.time() - started
        await poller.sample_now()  # the window's first sample: the state it starts from
        windows = [session.begin_window() for session in self.sessions]
        self._on_window(name, "start")
        if sender is not None:
            attack_task = loop.create_task(sender.run())
        window_end = loop.time() + config.duration
        while (left := window_end - loop.time()) > 0:
            await asyncio.sleep(min(0.25, left))
            progress.window_elapsed = config.duration - max(0.0, window_end - loop.time())
            progress.sent = sum(stats.sent for stats, _ in windows)
            progress.received = sum(stats.received for stats, _ in windows)
            progress.attack_sent = sender.stats.sent if sender is not None else 0
        self._on_window(name, "end")
        for session in self.sessions:  # what is sent from now on belongs to no window
            session.begin_window()
        attack = None
        if attack_task is not None:
            sender.stop()
            stats = await attack_task
            attack = {"spec": str(spec), "kinds": list(spec.kinds), "pps": spec.pps,
                      "target": list(context.target), **dataclasses.asdict(stats)}
        # Echoes of the window's last packets are still on their way: give them the loss timeout.
        await asyncio.sleep(config.loss_timeout)
        now_ns = time.perf_counter_ns()
        for stats, _ in windows:
            stats.close(now_ns)
        await poller.sample_now()  # the window's last sample: the state it leaves behind
        end = loop.time() - started
        media = aggregate(stats for stats, _ in windows).to_dict()
        rtts = [rtt for stats, _ in windows for rtt in stats.rtts_ns]
        rtcp_rtts = [rtt for _, view in windows for rtt in view.rtts_ns]
        if self.config.media == "speech":
            views = [view for _, view in windows]
            media["sent"] = sum(view.sent for view in views)
            media["lost"] = sum(view.inbound_gaps + max(0, view.server_reported_lost - view.reported_lost_base)
                                for view in views)
            media["rtt"] = summarize(rtcp_rtts).to_dict()
            media["rtt_source"] = "rtcp"
            media["server_stream_gaps"] = sum(view.inbound_gaps for _, view in windows)
            media["server_stream_packets"] = sum(view.inbound_packets for _, view in windows)
            media["voice_to_voice"] = summarize(
                [v for _, view in windows for v in view.voice_to_voice_ns]).to_dict()
            rtts = rtcp_rtts
        media["cdf"] = cdf_points(rtts)
        scenario = {"name": name, "attack": attack, "start_s": round(start, 3), "end_s": round(end, 3),
                    "media": media, "server": poller.window(start, end)}
        return scenario, rtts

    def _attack_context(self) -> AttackContext:
        live = [s for s in self.sessions if s.connection.peer.state == "connected"]
        return AttackContext(
            target=self.sessions[0].connection.peer.remote,
            server_ufrags=[(s.server_ufrag, s.client_ufrag) for s in live],
            bound=[BoundTuple(send=s.send_raw, ssrc=s.ssrc, next_sequence=s.next_sequence) for s in live],
        )

    async def _display(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._on_progress(self.progress)


def verdicts(scenarios: list[tuple[dict, list]], p99_goal: float) -> list[dict]:
    """PERF-02/03 per attack: p99 RTT against quiet, legit loss, server sessions flat."""
    if not scenarios:
        return []
    quiet = scenarios[0][0]
    quiet_p99 = quiet["media"]["rtt"]["p99"]
    out = [{"name": "quiet: no legit loss", "value": quiet["media"]["lost"], "goal": "= 0",
            "ok": quiet["media"]["lost"] == 0}]
    for scenario, _ in scenarios[1:]:
        name = scenario["name"]
        p99 = scenario["media"]["rtt"]["p99"]
        ratio = None if not quiet_p99 or p99 is None else p99 / quiet_p99
        out.append({"name": f"{name}: legit p99 RTT / quiet p99", "value": ratio,
                    "goal": f"< {p99_goal:g}", "ok": ratio is not None and ratio < p99_goal})
        out.append({"name": f"{name}: legit packets lost", "value": scenario["media"]["lost"],
                    "goal": "= 0", "ok": scenario["media"]["lost"] == 0})
        server = scenario["server"]
        if server["sessions_start"] is not None:
            grew = (server["sessions_max"] or 0) - server["sessions_start"]
            out.append({"name": f"{name}: server sessions growth", "value": grew, "goal": "= 0",
                        "ok": grew == 0 and server["sessions_end"] == server["sessions_start"]})
    return out


def machine_facts() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
            "executable": os.path.basename(sys.executable)}
