"""Requirements the PERF checks judge (see toolkit.conformance.requirements).

Every PERF check compares a short `rtcgate load` run with thresholds the user sets
(`Settings.perf`, `rtcgate check --perf-*`): no RFC sets them, so each is this project's
POLICY, and the numbers are the user's.
"""

from toolkit.conformance.model import Level, Requirement

_THRESHOLDS = "the user's thresholds (Settings.perf, rtcgate check --perf-*); no RFC sets them"

REQUIREMENTS = {
    "PERF-01": Requirement(
        Level.POLICY, "docs/architecture.md: setup phases",
        "Every session sets up, and the p99 from offer to first SRTP stays within --perf-setup-ms (default 1000 "
        "ms).",
        prevents="calls that ring on silence for seconds, or fail to connect, when several sessions start at once",
        note=f"Thresholds are {_THRESHOLDS}.",
    ),
    "PERF-02": Requirement(
        Level.POLICY, "docs/architecture.md: adversarial load; RFC 8445 §19 and RFC 8489 §16 (security "
                      "considerations: attacks on the media port)",
        "Under each attack kind at --perf-attack-pps, lose no legitimate packet and keep the legitimate p99 RTT "
        "below --perf-p99-ratio × the quiet p99 (floored at --perf-rtt-floor-ms).",
        prevents="a spoofed-packet flood on the single public UDP port degrading or dropping every call on it",
        note=f"Thresholds are {_THRESHOLDS}.",
    ),
    "PERF-03": Requirement(
        Level.POLICY, "docs/architecture.md principle 2; OWASP ASVS v4.0.3 V11.1.4",
        "Under attack the target's session count stays where the quiet window left it, and its resident memory "
        "grows by less than --perf-rss-growth-mib.",
        prevents="state exhaustion: unauthenticated packets that create sessions or buffers until the server "
                 "runs out of memory",
        note=f"Thresholds are {_THRESHOLDS}; a target without the rtcgate_sessions / "
             "rtcgate_process_resident_bytes metrics SKIPs.",
    ),
    "PERF-04": Requirement(
        Level.POLICY, "docs/architecture.md: voice latency",
        "Under the mix attack every turn is still answered, and the voice-to-voice p99 grows by at most "
        "--perf-voice-slack-ms over the quiet window.",
        prevents="an attacker making a voice agent slow or deaf for every caller by flooding its port",
        note=f"Thresholds are {_THRESHOLDS}.",
    ),
}
