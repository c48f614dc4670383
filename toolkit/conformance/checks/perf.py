"""PERF — measured under adversarial traffic, against thresholds the user sets (`Settings.perf`,
`rtcgate check --perf-*`). Each check is a short `rtcgate load` run; PERF-01..03 share one run
per target (setup, a quiet window, then one window per attack kind), PERF-04 makes its own on
the voice loop. Against the reference server that run goes to its voice twin, another process,
which boots beside PERF-01's run when PERF-04 is planned too; the two load runs themselves never
overlap: they share the probe's event loop, and one run's session setup (key generation, DTLS
handshakes) would stall the other's measured windows.
The figures go into the check's notes; the full report with plots is `rtcgate load`'s, and the
message says how to get it. The load generator shares the probe's event loop, so each run
records the probe's scheduling lag per window; a latency verdict the lag explains is a SKIP
("inconclusive: the runner was too busy", see `toolkit.conformance.timing`), never a FAIL.

What passes:
- PERF-01: every session sets up, and the p99 of offer → first SRTP is within --perf-setup-ms.
- PERF-02: under each attack kind at --perf-attack-pps, no legit packet is lost and the legit p99
  RTT stays below --perf-p99-ratio × the quiet p99 (a quiet p99 under --perf-rtt-floor-ms counts as
  that floor: loopback RTTs of a few hundred µs double on a scheduler's whim).
- PERF-03: the target's session count (its /metrics `rtcgate_sessions`, sampled at each window's
  edges and every half second) stays where the quiet window left it through every attack window,
  and its resident memory (`rtcgate_process_resident_bytes`) grows by less than
  --perf-rss-growth-mib over the attacks. A target without those metrics SKIPs.
- PERF-04: every turn of every session is answered in the quiet window and under the `mix`
  attack, and the p99 of voice-to-voice latency (our last loud packet → the first packet of the
  answer) grows by at most --perf-voice-slack-ms.
"""

from __future__ import annotations

import asyncio

from toolkit.conformance.conversation import Conversation
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import Do
from toolkit.conformance.targets import Target
from toolkit.conformance.timing import LagSummary, SchedulingLag, TimingProblem, gc_held, judge_timing
from toolkit.load.accounting import LoadError
from toolkit.load.attacks import ATTACK_KINDS, parse_attack
from toolkit.load.run import LoadConfig, LoadRun
from toolkit.peer import PeerError
from toolkit.peer.audio import FIRST_SENTENCE_PACKETS

_RUNS: dict[tuple[int, str, int], asyncio.Future] = {}
"""One load run per (target, media, event loop): PERF-01..03 read the same run."""
_PREFETCHED: set[asyncio.Task] = set()
"""Voice twins booting ahead for a later check (kept referenced until they are up)."""


def _whip_url(target: Target) -> str:
    url = getattr(target, "url", None)
    if url is None:
        try:
            url = target.whip_url
        except Exception:  # noqa: BLE001 - any target without a WHIP URL
            url = None
    if url is None:
        raise CheckSkipped(f"PERF checks drive sessions over WHIP; {target.description} has no WHIP URL")
    return url


def _voice_twin(conversation: Conversation) -> Target | None:
    """The target PERF-04 plays against when it is another server than this one (the reference's
    voice twin): its load run can go beside this one's without either counting the other's sessions."""
    twin = conversation.target.for_profile("voice")
    return twin if twin is not conversation.target else None


async def _prefetch_voice(conversation: Conversation, twin: Target) -> None:
    """Boot the voice twin (in a thread: another process starting) while PERF-01's run plays."""
    try:
        await asyncio.to_thread(twin.start)
    except Exception:  # noqa: BLE001 - PERF-04 starts the twin itself, and reports
        pass


async def _load(conversation: Conversation, media: str, target: Target | None = None) -> dict:
    settings = conversation.settings
    target = target or conversation.target
    if media == "probe" and target.echoes is False:
        raise CheckSkipped("the target does not echo media (learned in the sanity conversation), and the probe "
                           "load run measures round trips of echoed packets; PERF-04 measures its voice loop")
    key = (id(target), media, id(conversation.loop))
    future = _RUNS.get(key)
    if future is None and media == "probe" and "PERF-04" in settings.planned:
        twin = _voice_twin(conversation)
        if twin is not None and (id(twin), "speech", id(conversation.loop)) not in _RUNS:
            task = conversation.loop.create_task(_prefetch_voice(conversation, twin))
            _PREFETCHED.add(task)
            task.add_done_callback(_PREFETCHED.discard)
    if future is None:
        if media == "speech":
            attacks = (parse_attack(f"mix@{settings.perf.attack_pps:g}"),)
            window = settings.perf.voice_window
        else:
            attacks = tuple(parse_attack(f"{kind}@{settings.perf.attack_pps:g}") for kind in ATTACK_KINDS)
            window = settings.perf.window
        config = LoadConfig(
            whip_url=_whip_url(target), sessions=settings.perf.sessions, duration=window, attacks=attacks,
            media=media, local_host=settings.local_host, consent_interval=settings.consent_interval,
            loss_timeout=0.3, turn_silence=1.2, stagger_turns=False, seed=settings.seed,
            setup_timeout=settings.connect_timeout,
            turn_packets=FIRST_SENTENCE_PACKETS if media == "speech" else None, remote=target.remote_override,
            headers=tuple(getattr(target, "headers", {}).items()))
        future = _RUNS[key] = conversation.loop.create_future()
        monitor = SchedulingLag(conversation.loop)
        monitor.start()
        try:
            started = conversation.loop.time()
            with gc_held():  # no collector pauses inside the measured windows
                result = await LoadRun(config).run()
            _attach_lag(result, monitor, started)
            future.set_result(result)
        except (LoadError, PeerError, OSError) as exc:
            future.set_exception(CheckFailed(f"the load run failed: {exc}"))
        except BaseException:
            del _RUNS[key]  # interrupted (the check's timeout): the next check runs it again
            future.set_exception(CheckFailed("the shared load run was interrupted"))
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            await monitor.stop()
    return await asyncio.shield(future)


def _attach_lag(result: dict, monitor: SchedulingLag, started: float) -> None:
    """The probe's scheduling lag over the whole run and over each window (the load generator
    shares the probe's event loop: a busy runner delays its sends and stamps alike)."""
    windows = {scenario["name"]: monitor.summary(since=started + scenario["start_s"], until=started + scenario["end_s"])
               for scenario in result["scenarios"]}
    first = result["scenarios"][0]["start_s"] if result["scenarios"] else None
    windows["setup"] = monitor.summary(until=None if first is None else started + first)
    result["probe_lag"] = {"run": monitor.summary(), "windows": windows}


def _lag(result: dict, *windows: str) -> LagSummary:
    """The worst of the named windows' lag summaries (the whole run's when none are named)."""
    lag = result["probe_lag"]
    spans = [lag["windows"][name] for name in windows] if windows else [lag["run"]]
    return LagSummary(max(s.p99 for s in spans), max(s.worst for s in spans), sum(s.wakeups for s in spans))


def _note_shared_run(conversation: Conversation) -> None:
    """Say when this check reads a load run an earlier check (PERF-01) already made: its short
    duration is not a measurement that took no time."""
    if (id(conversation.target), "probe", id(conversation.loop)) in _RUNS:
        conversation.note("judged from PERF-01's load run (shared by PERF-01..03; its time counts there)")


def _command(conversation: Conversation, media: str) -> str:
    settings = conversation.settings
    reference = conversation.target.kind == "reference"
    target = "--reference" if reference else f"--whip {_whip_url(conversation.target)}"
    pps = f"{settings.perf.attack_pps:g}"
    if media == "speech":
        extra = f"{' --server-media voice' if reference else ' --media speech'} --attack mix@{pps}"
    else:
        extra = "".join(f" --attack {kind}@{pps}" for kind in ATTACK_KINDS)
    return f"rtcgate load {target} --sessions {settings.perf.sessions}{extra}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


async def setup_phases(conversation: Conversation) -> None:
    result = await _load(conversation, "probe")
    setup = result["setup"]
    phases = setup["phases_ms"]
    for phase, summary in phases.items():
        conversation.note(f"{phase}: p50 {_ms(summary['p50'])}, p99 {_ms(summary['p99'])}")
    if setup["failed"]:
        raise CheckFailed(f"{setup['failed']} of {setup['sessions']} sessions did not set up: {setup['errors'][0]}")
    limit = conversation.settings.perf.setup_ms
    p99 = phases["total"]["p99"]
    if p99 is None:
        raise CheckFailed("no session reached its first SRTP packet: no setup time to judge")
    problems = []
    if p99 > limit:
        slowest = max((p for p in phases if p != "total"), key=lambda p: phases[p]["p99"] or 0)
        problems.append(TimingProblem(f"offer → first SRTP p99 {_ms(p99)} is over {limit:g} ms (slowest phase: "
                                      f"{slowest}, p99 {_ms(phases[slowest]['p99'])})", (p99 - limit) / 1000))
    judge_timing(conversation, problems, lag=_lag(result, "setup"))


async def rtt_under_attack(conversation: Conversation) -> None:
    settings = conversation.settings
    _note_shared_run(conversation)
    result = await _load(conversation, "probe")
    quiet, *attacked = result["scenarios"]
    floor = max(quiet["media"]["rtt"]["p99"] or 0.0, settings.perf.rtt_floor_ms)
    conversation.note(f"quiet: p99 {_ms(quiet['media']['rtt']['p99'])}, lost {quiet['media']['lost']} "
                      f"of {quiet['media']['sent']}")
    problems, slow = [], []
    if quiet["media"]["lost"]:
        problems.append(f"quiet: {quiet['media']['lost']} of {quiet['media']['sent']} legit packets lost")
    for scenario in attacked:
        media = scenario["media"]
        p99 = media["rtt"]["p99"]
        conversation.note(f"{scenario['name']} ({scenario['attack']['sent']} sent): p99 {_ms(p99)}, "
                          f"lost {media['lost']} of {media['sent']}, jitter p50 {_ms(media['jitter']['p50'])}")
        if media["lost"]:
            problems.append(f"{scenario['name']}: {media['lost']} of {media['sent']} legit packets lost")
        if p99 is None:
            problems.append(f"{scenario['name']}: no legit round trip measured")
        elif p99 >= settings.perf.p99_ratio * floor:
            slow.append((scenario["name"], TimingProblem(
                f"{scenario['name']}: legit p99 RTT {_ms(p99)} is not below {settings.perf.p99_ratio:g} × "
                f"{_ms(floor)} (quiet p99, floor {settings.perf.rtt_floor_ms:g} ms)",
                (p99 - settings.perf.p99_ratio * floor) / 1000)))
    report = f" — full report: {_command(conversation, 'probe')}"
    if problems:
        raise CheckFailed("; ".join(problems + [problem.text for _, problem in slow]) + report)
    judge_timing(conversation, [problem for _, problem in slow], context=report,
                 lag=_lag(result, "quiet", *(name for name, _ in slow)))


async def state_under_attack(conversation: Conversation) -> None:
    settings = conversation.settings
    _note_shared_run(conversation)
    result = await _load(conversation, "probe")
    if result["metrics_error"] or not result["server_timeline"]:
        raise CheckSkipped(f"the target's state is not observable: {result['metrics_error'] or 'no /metrics samples'}")
    if result["server_timeline"][0]["sessions"] is None:
        raise CheckSkipped("the target's /metrics has no rtcgate_sessions gauge")
    quiet, *attacked = result["scenarios"]
    baseline = quiet["server"]["sessions_end"]
    conversation.note(f"quiet: the target holds {baseline} sessions")
    problems = []
    for scenario in attacked:
        server = scenario["server"]
        conversation.note(f"{scenario['name']}: sessions {server['sessions_start']} → max {server['sessions_max']} "
                          f"→ {server['sessions_end']}; drops {server['drops']}")
        if baseline is None or server["sessions_start"] is None:
            continue
        if max(server["sessions_max"], server["sessions_end"], server["sessions_start"]) != baseline:
            problems.append(f"{scenario['name']}: server sessions {server['sessions_start']} → max "
                            f"{server['sessions_max']} → {server['sessions_end']}, {baseline} before the attacks")
    rss = [s["rss_bytes"] for s in result["server_timeline"] if s["rss_bytes"] is not None]
    if rss and attacked:
        attack_start = attacked[0]["start_s"]
        before = [s["rss_bytes"] for s in result["server_timeline"] if s["t"] <= attack_start and s["rss_bytes"]]
        base = before[-1] if before else rss[0]
        growth = (max(rss) - base) / (1 << 20)
        conversation.note(f"resident memory: {base / (1 << 20):.1f} MiB before the attacks, +{growth:.1f} MiB at most")
        if growth >= settings.perf.rss_growth_mib:
            problems.append(f"resident memory grew {growth:.1f} MiB under attack (limit {settings.perf.rss_growth_mib:g} MiB)")
    else:
        conversation.note("resident memory not observable (no rtcgate_process_resident_bytes)")
    if problems:
        raise CheckFailed("; ".join(problems))


async def voice_under_attack(conversation: Conversation) -> None:
    settings = conversation.settings
    target = _voice_twin(conversation) or conversation.target
    await asyncio.to_thread(target.start)
    result = await _load(conversation, "speech", target)
    quiet, *attacked = result["scenarios"]
    quiet_v2v = quiet["media"]["voice_to_voice"]
    if not quiet_v2v["count"]:
        lag = _lag(result, "quiet")
        answered = sum(scenario["media"]["voice_to_voice"]["count"] for scenario in attacked)
        if lag.busy:
            raise CheckSkipped(f"inconclusive: the runner was too busy ({lag.describe()}) to judge: the target "
                               f"answered none of our utterances in the quiet window ({answered} under attack)")
        if answered:
            raise CheckSkipped(f"inconclusive: the target answered none of our utterances in the quiet window, yet "
                               f"{answered} under attack: its answers came too late for the "
                               f"{settings.perf.voice_window:g} s window ({lag.describe()})")
        raise CheckSkipped("the target answered none of our utterances in the quiet window or under attack: it runs "
                           "no voice loop")
    sessions = result["setup"]["sessions"] - result["setup"]["failed"]
    conversation.note(f"quiet: {quiet_v2v['count']} turns of {sessions} sessions, voice-to-voice p50 "
                      f"{_ms(quiet_v2v['p50'])} p99 {_ms(quiet_v2v['p99'])}")
    problems, late = [], []
    turns = quiet_v2v["count"]
    for scenario in attacked:
        v2v = scenario["media"]["voice_to_voice"]
        conversation.note(f"{scenario['name']}: {v2v['count']} turns, voice-to-voice p50 {_ms(v2v['p50'])} "
                          f"p99 {_ms(v2v['p99'])}, RTCP RTT p99 {_ms(scenario['media']['rtt']['p99'])}, "
                          f"lost {scenario['media']['lost']}")
        if v2v["count"] < turns:
            late.append(TimingProblem(f"{scenario['name']}: {v2v['count']} turns answered, {turns} in the quiet "
                                      f"window", None))
        elif v2v["p99"] - quiet_v2v["p99"] > settings.perf.voice_slack_ms:
            late.append(TimingProblem(f"{scenario['name']}: voice-to-voice p99 {_ms(v2v['p99'])} is more than "
                                      f"{settings.perf.voice_slack_ms:g} ms over the quiet {_ms(quiet_v2v['p99'])}",
                                      (v2v["p99"] - quiet_v2v["p99"] - settings.perf.voice_slack_ms) / 1000))
        if scenario["media"]["lost"]:
            problems.append(f"{scenario['name']}: {scenario['media']['lost']} audio packets lost")
    report = f" — full report: {_command(conversation, 'speech')}"
    if problems:
        raise CheckFailed("; ".join(problems + [problem.text for problem in late]) + report)
    judge_timing(conversation, late, context=report, lag=_lag(result, "quiet", *(s["name"] for s in attacked)))


CHECKS = (
    Check("PERF-01", "perf", "docs/architecture.md: setup phases",
          "setup time per phase (signaling → first STUN → ICE selected → DTLS done → first SRTP) within the "
          "user's limit", (Do(setup_phases, "a load run's setup"),), timeout=60.0),
    Check("PERF-02", "perf", "docs/architecture.md: adversarial load",
          "media round-trip time, jitter and loss for N sessions, quiet vs under each attack mix (judged from "
          "PERF-01's load run)",
          (Do(rtt_under_attack, "quiet, then each attack kind"),), timeout=60.0),
    Check("PERF-03", "perf", "docs/architecture.md principle 2",
          "state growth under each attack mix stays flat (judged from PERF-01's load run)",
          (Do(state_under_attack, "the target's /metrics over the attacks"),), timeout=60.0),
    Check("PERF-04", "perf", "docs/architecture.md: voice latency",
          "voice-to-voice latency distribution under each attack mix",
          (Do(voice_under_attack, "turns quiet and under the mix"),), timeout=60.0),
)
