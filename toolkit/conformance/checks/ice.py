"""ICE — lite agent behaviour (RFC 8445, RFC 8839, RFC 7675)."""

from __future__ import annotations

import asyncio
import math
import string
from dataclasses import dataclass

from toolkit.conformance.checks.common import (
    answer_lines,
    can_restart,
    check_request,
    ice_lite,
    random_text,
    require,
)
from toolkit.conformance.conversation import Conversation, Session, is_stun_request
from toolkit.conformance.model import Check, CheckFailed, CheckSkipped
from toolkit.conformance.steps import (
    Alive,
    Connect,
    Do,
    Echo,
    Expect,
    Offer,
    Require,
    Send,
    Silence,
    Socket,
    Step,
    StunError,
    StunSuccess,
    echoes_of,
    send_media,
    send_silence,
)
from toolkit.peer import IceCompleted, PeerError, RtcpReceived, RtpReceived

SAMPLES = 8
"""Sessions opened to judge how random the target's ufrags are."""
MIN_RANDOM_BITS = 24
"""RFC 8445 §5.3: the ufrag carries at least 24 bits of randomness."""


# -- ICE-01, ICE-08: credentials -------------------------------------------------------------


def answer_shape(conversation: Conversation) -> None:
    """Host candidates only, ufrag ≥ 4 characters, password ≥ 22 (RFC 8445 §5.3, RFC 8839 §5.4)."""
    peer = conversation.session("main").peer
    answer = peer.answer
    types = []
    for line in answer_lines(conversation):
        if line.startswith("a=candidate:"):
            fields = line.split()
            types.append(fields[fields.index("typ") + 1] if "typ" in fields else "?")
    require(bool(types), "the answer has no a=candidate line (a lite agent must list its host candidates)")
    others = sorted(set(types) - {"host"})
    require(not others, f"the answer has non-host candidates ({', '.join(others)}); a lite agent has host candidates only")
    require(len(answer.ice_ufrag) >= 4, f"ice-ufrag {answer.ice_ufrag!r} is shorter than 4 characters")
    require(len(answer.ice_pwd) >= 22, f"ice-pwd is {len(answer.ice_pwd)} characters, fewer than 22")
    require(set(answer.ice_pwd) <= ICE_CHARS and len(answer.ice_pwd) <= 256,
            "ice-pwd is not 22–256 ice-chars (RFC 8839 §5.4: letters, digits, + and /)")
    conversation.note(f"a=ice-lite, {len(types)} host candidate(s), ufrag {len(answer.ice_ufrag)} characters, "
                      f"password {len(answer.ice_pwd)} characters")


async def collect_ufrags(conversation: Conversation) -> None:
    """Open SAMPLES sessions at once (signaling only) and keep their ufrags in creation order."""
    existing = [session.peer.answer.ice_ufrag for session in conversation.sessions.values()]
    for number in range(SAMPLES - len(existing)):
        await conversation.offer(f"sample{number}", f"sample{number}", conversation.new_peer())
    conversation.scratch["ufrags"] = [session.peer.answer.ice_ufrag for session in conversation.sessions.values()]


ICE_CHARS = frozenset(string.ascii_letters + string.digits + "+/")
"""RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/"; ufrag 4–256 of them, password 22–256."""
UNIFORM_LEVEL = 1e-5
"""A character position counts as random unless its samples show so few distinct characters
that a uniform draw from the alphabet would do that less often than this.

False-FAIL probability for a truly random 24-bit ufrag: it FAILs only if one of its random
positions is taken for a constrained one, or two of the 8 ufrags collide (28 / 2^24 ≈ 1.7e-6).
Per position, with 8 samples, that is P(≤ 2 distinct of 8 uniform hex draws) ≈ 7.1e-6, or
P(≤ 3 distinct of 8 draws from 64 ice-chars) ≈ 8.6e-7 (1.5e-5 if the generator draws from only
36 characters): about 4.3e-5 for six random hex characters, 3.4e-6 for four base64 ones
(`test_check_judgements` computes these and plays random generators). A counter or a clock
FAILs by far: its high positions take one or two values across concurrent sessions."""


def alphabet_size(values: list[str]) -> int:
    """16 when every character is a hex digit (the samples are evidence of a hex encoding),
    else the 64 ice-chars: the most random bits a character can carry, so a FAIL stays evidence."""
    used = set("".join(values))
    return 16 if used <= set(string.hexdigits.lower()) or used <= set(string.hexdigits.upper()) else 64


def at_most_distinct(draws: int, alphabet: int, distinct: int) -> float:
    """P(`draws` uniform draws from `alphabet` symbols show at most `distinct` different ones)."""
    seen = [1.0] + [0.0] * draws  # seen[k]: P(k different symbols so far)
    for _ in range(draws):
        seen = [(seen[k] * k / alphabet if k else 0.0) + (seen[k - 1] * (alphabet - k + 1) / alphabet if k else 0.0)
                for k in range(draws + 1)]
    return sum(seen[:distinct + 1])


def random_positions(ufrags: list[str]) -> tuple[list[int], int]:
    """(positions whose characters look uniformly random across the samples, alphabet size).

    A fixed part (a routing prefix, as the reference server's) is no evidence against the rest;
    a position that varies far less than a uniform draw would (a counter's or a clock's high
    digits) does not count."""
    length = min(map(len, ufrags))
    varying = [i for i in range(length) if len({u[i] for u in ufrags}) > 1]
    alphabet = alphabet_size([u[i] for u in ufrags for i in varying]) if varying else 64
    random = [i for i in varying
              if at_most_distinct(len(ufrags), alphabet, len({u[i] for u in ufrags})) >= UNIFORM_LEVEL]
    return random, alphabet


def ufrag_problems(ufrags: list[str]) -> tuple[list[str], str]:
    """(what the samples prove wrong, a summary). FAILs only on evidence: bad length or
    characters, ufrags shared by concurrent sessions, or fewer than MIN_RANDOM_BITS positions'
    worth of uniformly varying characters."""
    problems = []
    bad = sorted({u for u in ufrags if not 4 <= len(u) <= 256 or not set(u) <= ICE_CHARS})
    if bad:
        problems.append(f"ufrags outside RFC 8839 §5.4 (4–256 ice-chars: letters, digits, + and /): "
                        f"{', '.join(map(repr, bad[:3]))}")
    duplicates = sorted({u for u in ufrags if ufrags.count(u) > 1})
    if duplicates:
        problems.append(f"concurrent sessions share ufrags: {', '.join(duplicates)}")
    random, alphabet = random_positions(ufrags)
    bits = len(random) * math.log2(alphabet)
    length = min(map(len, ufrags))
    summary = (f"{len(ufrags)} ufrags: {', '.join(ufrags)}; {len(random)} of {length} positions vary as a uniform "
               f"draw from {alphabet} characters would (≈{bits:.0f} random bits)")
    if bits < MIN_RANDOM_BITS:
        problems.append(f"only {len(random)} character positions vary like random ones across {len(ufrags)} "
                        f"concurrent sessions' ufrags ({', '.join(ufrags)}): at most {bits:.0f} random bits, fewer "
                        f"than {MIN_RANDOM_BITS} (sequential, time-derived or mostly fixed ufrags)")
    return problems, summary


@dataclass(frozen=True, eq=False)
class RandomUfrags(Step):
    """Sessions opened at once (signaling only) until the conversation holds SAMPLES, and their
    ufrags judged: unique, ice-chars, and enough uniformly varying positions that no counter or
    clock makes them (`ufrag_problems`)."""

    async def run(self, conversation: Conversation) -> None:
        await collect_ufrags(conversation)
        problems, summary = ufrag_problems(conversation.scratch["ufrags"])
        conversation.note(summary)
        require(not problems, "; ".join(problems))

    def describe(self) -> str:
        return f"RandomUfrags({SAMPLES} sessions)"


# -- ICE-02 ----------------------------------------------------------------------------------


async def no_checks_from_target(conversation: Conversation) -> None:
    await asyncio.sleep(conversation.settings.silence)
    requests = [d for d in conversation.datagrams if d.direction == "in" and is_stun_request(d.data)]
    if requests:
        first = requests[0]
        raise CheckFailed(f"the lite target sent {len(requests)} connectivity check(s) of its own, the first at "
                          f"{first.time:.3f} s to socket {first.socket}")
    conversation.note("no connectivity check came from the target")


# -- ICE-05, ICE-09: a second nomination ------------------------------------------------------


async def echo_destination(conversation: Conversation, via: str) -> str | None:
    """Send one packet of session main from socket `via`; the socket its echo reached, or None.
    SKIPs the check against a target that does not echo (`send_media` does)."""
    session = conversation.session("main")
    token = send_media(conversation, session, via=via)
    deadline = conversation.now() + conversation.settings.reply_timeout
    while not echoes_of(session, token) and conversation.now() < deadline:
        await asyncio.sleep(0.01)
    where = echoes_of(session, token)
    return where[0] if where else None


LATEST_NOMINATION_POLICY = ("this project's policy is that the latest nomination wins; a lite agent that keeps its "
                            "first nomination, or refuses a second, is RFC 8445-compliant")


async def latest_nomination_wins(conversation: Conversation) -> None:
    """A USE-CANDIDATE from b moves media to b; one from main again moves it back."""
    for via in ("b", "main"):
        await Send(check_request(use_candidate=True), via=via, label=f"USE-CANDIDATE from {via}").run(conversation)
        try:
            await Expect(StunSuccess(), via=via).run(conversation)
        except CheckFailed as exc:
            raise CheckFailed(f"a later USE-CANDIDATE from {via} was not accepted ({exc}): {LATEST_NOMINATION_POLICY}"
                              ) from None
        where = await echo_destination(conversation, via)
        require(where == via, f"after a later USE-CANDIDATE from {via}, media sent from {via} was echoed to "
                              f"{where or 'nobody'}, not to {via}: {LATEST_NOMINATION_POLICY}")
        conversation.note(f"after a USE-CANDIDATE from {via}, media went to {via}")


async def echoes_to_one_address(conversation: Conversation) -> None:
    """Media from both nominated addresses, alternating: the echoes stay on one address (the selected
    pair), whichever packet's source they answer. One switch is allowed (an agent that moves to the
    later nomination takes a moment to do so); echoes that keep following the packets' sources are not."""
    session = conversation.session("main")
    sent = []
    for via in ("b", "main", "b", "main", "b", "main"):
        sent.append((via, send_media(conversation, session, via=via)))
        await asyncio.sleep(0.02)
    await asyncio.sleep(conversation.settings.silence)
    arrivals = [(via, echoes_of(session, token)[0]) for via, token in sent if echoes_of(session, token)]
    require(bool(arrivals), "no media was echoed after the second nomination: the session is not alive")
    destinations = [where for _, where in arrivals]
    switches = sum(1 for before, after in zip(destinations, destinations[1:]) if before != after)
    said = ", ".join(f"from {via} to {where}" for via, where in arrivals)
    require(switches <= 1, f"the echoes changed address {switches} times ({said}): the target sends to "
                                    "each packet's source, not on its one selected pair")
    conversation.note(f"{len(arrivals)} of {len(sent)} echoes, to {' then '.join(dict.fromkeys(destinations))} ({said})")


# -- ICE-06, ICE-10: consent ------------------------------------------------------------------


CONSENT_SLACK = 2.0
"""How late after the consent timeout a target may still stop (its timers tick, say, once a second)."""
STOPPED_AFTER = 1.5
"""Past the consent timeout, this long without an echo (7 packets unanswered) means media stopped."""


def is_binding_success(data: bytes) -> bool:
    return len(data) >= 20 and data[:2] == b"\x01\x01"


LITE_CONSENT = "ICE-06 judges consent for ICE-lite targets (this project's policy)"
FULL_CONSENT = "ICE-10 judges consent for full ICE agents (RFC 7675 §5.1, a MUST)"


@dataclass(frozen=True, eq=False)
class ConsentExpires(Step):
    """Media without checks past the consent timeout, for one kind of target, told apart by its
    answer: a full ICE agent (no a=ice-lite, `full_ice`) must do consent freshness (RFC 7675 §5.1;
    RFC 9725 asks it of full implementations), so it must stop once no answer to its checks has
    come for the consent timeout; a lite agent sends no checks to be answered (a lite agent that
    checks anyway, like Janus, is still lite: ICE-02 reports that), so this project's policy holds
    it to the checks it receives. Each kind SKIPs the other's."""

    full_ice: bool

    async def run(self, conversation: Conversation) -> None:
        full_ice = self.full_ice
        lite = conversation.session("main").peer.answer.ice_lite
        if full_ice and lite:
            raise CheckSkipped("the target is an ICE-lite agent (a=ice-lite): RFC 7675 consent freshness rests on "
                               f"the answers to an agent's own checks and binds full ICE agents; {LITE_CONSENT}")
        if not full_ice and not lite:
            raise CheckSkipped(f"the target is a full ICE agent (no a=ice-lite in its answer): {FULL_CONSENT}")
        after, checked_at, timeout = await media_after_consent(conversation)
        if after is None:  # the target does not echo
            if full_ice:
                await own_media_stopped(conversation, checked_at + timeout + CONSENT_SLACK)
            return  # ICE-06: the check that follows sees whether consent freed the session
        if full_ice:
            require(after <= timeout + CONSENT_SLACK,
                    f"media was still echoed {after:.1f} s after the last of the target's checks the probe answered: "
                    f"RFC 7675 §5.1 makes it cease transmission once consent ({timeout:g} s) expires")
        else:
            require(after <= timeout + CONSENT_SLACK,
                    f"media was still echoed {after:.1f} s after the last connectivity check: this project's policy "
                    f"is that a lite agent stops after the consent timeout ({timeout:g} s) without checks")

    def describe(self) -> str:
        return f"ConsentExpires({'full ICE' if self.full_ice else 'ICE-lite'})"


async def media_after_consent(conversation: Conversation) -> tuple[float | None, float, float]:
    """Send media every 200 ms without any check, and leave the target's own checks unanswered (a full
    ICE agent's consent is the answers to its checks, RFC 7675 §5.1); return (how long after the last
    check either way answered media was last echoed, None against a target that does not echo; when
    that last check was; the consent timeout)."""
    session = conversation.session("main")
    session.socket.receive_filter = lambda data: not is_stun_request(data)
    answered = [d.time for d in conversation.datagrams
                if d.direction == "out" and d.socket == session.socket.name and is_binding_success(d.data)]
    checked_at = max([next(time for _, time, event in session.events if isinstance(event, IceCompleted)), *answered])
    if answered:
        kind = ("its answer says a=ice-lite, yet it checks" if session.peer.answer.ice_lite
                else "a full ICE agent: no a=ice-lite in its answer")
        conversation.note(f"the target sends connectivity checks of its own ({kind}): the probe answered "
                          f"{len(answered)}, the last at {answered[-1]:.1f} s, and leaves the rest unanswered")
    timeout = conversation.settings.consent_timeout
    last_echo = None
    tokens = []
    end = checked_at + timeout + CONSENT_SLACK + 0.5  # a few packets after the latest allowed stop
    if conversation.target.echoes is False:
        await media_until(conversation, session, end)
        return None, checked_at, timeout
    while conversation.now() < end:
        tokens.append((conversation.now(), send_media(conversation, session)))
        await asyncio.sleep(0.2)
        for sent_at, token in tokens:
            if echoes_of(session, token):
                last_echo = max(last_echo or 0.0, sent_at)
        tokens = [(t, token) for t, token in tokens if not echoes_of(session, token)]
        now = conversation.now()
        if last_echo is not None and now >= checked_at + timeout and now - last_echo >= STOPPED_AFTER:
            break  # consent is over and the echoes have stopped: no need to watch the slack out
    require(last_echo is not None, "no media was echoed at all before consent expired")
    after = last_echo - checked_at
    conversation.note(f"the last echoed packet was sent {after:.1f} s after the last check "
                      f"(consent timeout {timeout:g} s)")
    return after, checked_at, timeout


async def media_until(conversation: Conversation, session: Session, end: float) -> None:
    """ICE-06 and ICE-10 against a target that does not echo: the same media (Opus silence every
    200 ms, no check) until `end`; for ICE-06 the check that follows sees whether consent freed the
    session (a target that lets media refresh consent still answers it)."""
    while conversation.now() < end:
        send_silence(conversation, session, packets=1)
        await asyncio.sleep(0.2)
    conversation.note(f"the target does not echo: media without checks went on until {end:.1f} s, past the "
                      f"consent timeout ({conversation.settings.consent_timeout:g} s) of the last check")


async def own_media_stopped(conversation: Conversation, expired: float) -> None:
    """ICE-10 against a target that does not echo: past the latest allowed stop (`expired`), no
    SRTP or SRTCP of its own may arrive while our media goes on for the RTCP report interval."""
    session = conversation.session("main")
    await media_until(conversation, session, expired + conversation.settings.report_timeout)
    late = [time for _, time, event in session.events
            if isinstance(event, (RtpReceived, RtcpReceived)) and time > expired]
    require(not late, f"the target still sent {len(late)} SRTP/SRTCP packet(s) of its own, the last at "
                      f"{max(late, default=0.0):.1f} s, after consent expired at {expired:.1f} s (timeout and slack "
                      "included): RFC 7675 §5.1 makes it cease transmission")
    conversation.note(f"no SRTP or SRTCP of the target's own arrived after {expired:.1f} s")


# -- ICE-07 ----------------------------------------------------------------------------------


RESTART_NOT_SUPPORTED = {
    405: "Method Not Allowed: no PATCH at all",
    422: "Unprocessable Content: RFC 9725's answer to a kind of PATCH the session does not support",
    501: "Not Implemented: the WHIP drafts' answer to a kind of PATCH the session does not support",
}
"""The answers RFC 9725 (and the drafts before it) name for a PATCH a WHIP session does not support."""


def restart_refused(exc: PeerError) -> CheckSkipped | None:
    """ICE restart is optional for a WHIP session (RFC 9725 §4.3): any HTTP error to the restart PATCH
    is its way of saying it has none, so the check does not apply. None: not an HTTP refusal."""
    if exc.status is None or not 400 <= exc.status < 600:
        return None
    known = RESTART_NOT_SUPPORTED.get(exc.status, "an HTTP error, which RFC 9725 asks of a session that cannot "
                                                  "restart ICE")
    reason = " ".join((exc.body or "").split())[:120]
    return CheckSkipped(f"the target refused the ICE restart: PATCH answered {exc.status}"
                        f"{f' ({reason})' if reason else ''}; {known}. ICE restart is optional for a WHIP session")


@dataclass(frozen=True, eq=False)
class IceRestart(Step):
    """An ICE restart of session main through the signaling adapter (a WHIP PATCH): new local
    credentials, and the target's new ones taken from its answer. SKIPs when the target refuses the
    PATCH with an HTTP error (`restart_refused`: optional for a WHIP session)."""

    async def run(self, conversation: Conversation) -> None:
        session = conversation.session("main")
        peer = session.peer
        ufrag, pwd = random_text(conversation, 8), random_text(conversation, 24)
        fragment = (f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
                    f"m=audio 9 UDP/TLS/RTP/SAVPF {peer.audio_pt}\r\na=mid:0\r\n")
        try:
            answer = await conversation.target.restart(session.handle, fragment,
                                                       timeout=conversation.settings.connect_timeout)
        except PeerError as exc:
            refused = restart_refused(exc)
            if refused is not None:
                raise refused from None
            raise CheckFailed(f"the ICE restart PATCH got no HTTP answer: {exc}") from None
        require(answer is not None, "the target answered the restart with 204: no new credentials, ICE did not restart")
        values = dict(line.rstrip("\r")[2:].split(":", 1) for line in answer.split("\n")
                      if line.startswith(("a=ice-ufrag:", "a=ice-pwd:")))
        require("ice-ufrag" in values and "ice-pwd" in values,
                f"the restart answer has no a=ice-ufrag/a=ice-pwd: {answer[:200]!r}")
        require(values["ice-ufrag"] != peer.answer.ice_ufrag, "the restart answer kept the old ice-ufrag")
        # The probe peer has no restart of its own yet: switch its credentials in place.
        peer.local_ufrag, peer.local_pwd = ufrag, pwd
        peer.answer.ice_ufrag, peer.answer.ice_pwd = values["ice-ufrag"], values["ice-pwd"]
        conversation.scratch["restarted_at"] = conversation.now()
        conversation.note(f"restarted: new target ufrag {values['ice-ufrag']}")

    def describe(self) -> str:
        return "IceRestart(session=main)"


async def no_new_handshake(conversation: Conversation) -> None:
    """After the restart and a check with the new credentials: no DTLS from the target (a DTLS client
    target would send a new ClientHello right after answering that check), the probe still connected."""
    await asyncio.sleep(conversation.settings.silence)
    since = conversation.scratch["restarted_at"]
    dtls = [d for d in conversation.datagrams if d.direction == "in" and d.time >= since and 19 < d.data[:1][0] < 64]
    require(not dtls, f"the target sent {len(dtls)} DTLS datagram(s) after the ICE restart: a new handshake, where "
                      "this project's policy is that the DTLS association carries on across an ICE restart")
    require(conversation.session("main").peer.state == "connected", "the probe peer lost its DTLS connection")


CHECKS = (
    Check(
        "ICE-01", "lite", "RFC 8445 §5.3, §6.1, RFC 8839 §5.4",
        "answer has a=ice-lite, host candidates only, ufrag ≥ 4 chars with ≥ 24 random bits, password ≥ 22 chars",
        (
            Offer(),
            Require(ice_lite, "a=ice-lite"),
            Do(answer_shape, "candidates and credential lengths"),
            RandomUfrags(),
        ),
    ),
    Check(
        "ICE-02", "lite", "RFC 8445 §6.1.1, §2.5",
        "the lite agent sends no connectivity checks of its own",
        (
            Offer(),
            Require(ice_lite, "a=ice-lite"),
            Connect(),
            Alive(),
            Do(no_checks_from_target, "no STUN request from the target"),
        ),
    ),
    Check(
        "ICE-03", "lite", "RFC 8445 §7.3.1.1",
        "request with ICE-CONTROLLED from the offerer (role conflict) → 487 or the RFC 8445 §7.3.1.1 resolution",
        (
            Offer(),
            Require(ice_lite, "a=ice-lite"),
            Connect(),
            Send(check_request(controlling=False, use_candidate=False), label="check with ICE-CONTROLLED"),
            Expect((StunError(487), StunSuccess())),
            Alive(),
        ),
    ),
    Check(
        "ICE-04", "lite", "RFC 8445 §7.3.1.5, §8.2",
        "USE-CANDIDATE on an authenticated check selects that pair; media goes to it",
        (
            Offer(),
            Require(ice_lite, "a=ice-lite"),
            Socket("early"),
            Send(check_request(use_candidate=False), via="early", label="check without USE-CANDIDATE"),
            Expect(StunSuccess(), via="early"),
            Connect(),  # the nominating check, from main
            Echo(),  # DTLS and media went to the nominated pair, not the earlier one
            Socket("late"),
            Send(check_request(use_candidate=False), via="late", label="later check without USE-CANDIDATE"),
            Expect(StunSuccess(), via="late"),
            Echo(),  # an un-nominated check moves nothing
        ),
    ),
    Check(
        "ICE-05", "lite", "RFC 8445 §8.2, §7.3.1.5, draft-thatcher-ice-renomination",
        "the latest nomination wins: a later USE-CANDIDATE from another authenticated pair moves media there, "
        "and one from the first pair moves it back",
        (
            Offer(),
            Require(ice_lite, "a=ice-lite"),
            Connect(),
            Socket("b"),
            Do(latest_nomination_wins, "USE-CANDIDATE from b, then from main again"),
        ),
    ),
    Check(
        "ICE-06", "core", "RFC 7675 §5.1 (by analogy, for ICE-lite targets)",
        "an ICE-lite target stops sending media, and frees the session, once no check has arrived for the consent "
        "timeout",
        (
            Connect(peer={"consent_interval": None}),
            ConsentExpires(full_ice=False),
            Send(check_request(), label="check after consent expired"),
            Expect((Silence(), StunError())),  # the session is gone: its ufrag is unknown now
        ),
        timeout=150.0,
    ),
    Check(
        "ICE-07", "core", "RFC 9725 §4.3, RFC 8445 §9, RFC 8840",
        "an ICE restart (new ufrag/pwd via WHIP PATCH) is answered with new credentials, checks with them are "
        "answered, and media carries on with the same SRTP keys",
        (
            Connect(),
            Require(can_restart, "ICE restart through signaling"),
            IceRestart(),
            Send(check_request(use_candidate=True), label="check with the new credentials"),
            Expect(StunSuccess()),
            Alive(media=True),  # same SRTP keys
        ),
    ),
    Check(
        "ICE-08", "core", "RFC 8445 §5.3, docs/architecture.md principle 2",
        "ufrags are unique across concurrent sessions and unpredictable (no sequential or time-derived ufrags)",
        (
            Offer(),
            RandomUfrags(),
        ),
    ),
    Check(
        "ICE-09", "core", "RFC 8445 §12.1",
        "after a second nomination from another address, media goes on one selected pair: the echoes stay on one "
        "address (after at most one switch to the later nomination), whichever address each packet came from",
        (
            Connect(),  # §12.1 binds full and lite agents alike
            Socket("b"),
            Send(check_request(use_candidate=True), via="b", label="USE-CANDIDATE from a second address"),
            Expect((StunSuccess(), StunError(400)), via="b"),  # an agent may refuse a second nomination
            Do(echoes_to_one_address, "media from both addresses"),
        ),
    ),
    Check(
        "ICE-10", "core", "RFC 7675 §5.1",
        "a full ICE agent (no a=ice-lite) stops sending media once the consent timeout has passed without an "
        "answer to its checks",
        (
            Connect(peer={"consent_interval": None}),
            ConsentExpires(full_ice=True),
        ),
        timeout=150.0,
    ),
    Check(
        "ICE-11", "core", "RFC 8445 §9, RFC 8842, RFC 9725 §4.3",
        "an ICE restart keeps the DTLS association: the target starts no new DTLS handshake after it",
        (
            Connect(),
            Require(can_restart, "ICE restart through signaling"),
            IceRestart(),
            Send(check_request(use_candidate=True), label="check with the new credentials"),
            Expect(StunSuccess()),
            Do(no_new_handshake, "no DTLS from the target after the restart"),
        ),
    ),
)
