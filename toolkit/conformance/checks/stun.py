"""STUN — message handling (RFC 8489, RFC 5769, RFC 8445 §7.3)."""

from __future__ import annotations

import asyncio

from toolkit.conformance.checks.common import (
    UNASSIGNED_REQUIRED_ATTRIBUTE,
    check_request,
    crafted_check,
    random_text,
    transaction_id,
)
from toolkit.conformance.conversation import Conversation, stun_transaction_id
from toolkit.conformance.model import Check, CheckFailed
from toolkit.conformance.steps import (
    Alive,
    BindsNothing,
    Connect,
    Do,
    Echo,
    Expect,
    Offer,
    Require,
    Send,
    Silence,
    Socket,
    StunError,
    StunSuccess,
)

WRONG_PASSWORD = "rtcgate-wrong-password-0"


def _flip_fingerprint(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def bad_fingerprint(session: str = "main", *, use_candidate: bool = False):
    def build(conversation: Conversation) -> bytes:
        return _flip_fingerprint(check_request(session, use_candidate=use_candidate)(conversation))

    return build


def without_username(message, conversation):
    from toolkit.crafters.stun import StunUsername

    message.attributes = [a for a in message.attributes if not isinstance(a, StunUsername)]


def unknown_ufrag(conversation: Conversation) -> str:
    return f"{random_text(conversation, 16)}:{conversation.session('main').peer.local_ufrag}"


# -- STUN-06: malformed messages, each with the answers RFC 8489 §14 allows ------------------


def length_past_end(message, conversation):
    """A SOFTWARE attribute whose length claims 200 bytes where 4 follow (MI and FP come after it)."""
    from toolkit.crafters.stun import SOFTWARE, StunAttribute

    message.attributes.insert(3, StunAttribute(type=SOFTWARE, length=200, value=b"abcd", padding=b""))


def odd_message_length(conversation: Conversation) -> bytes:
    """A valid check with one byte appended and the header length counting it (not a multiple of 4)."""
    data = check_request(use_candidate=False)(conversation) + b"\x00"
    return data[:2] + (len(data) - 20).to_bytes(2, "big") + data[4:]


def nonzero_padding(message, conversation):
    """A 3-byte SOFTWARE whose padding byte is 0xFF (covered by MESSAGE-INTEGRITY); receivers ignore padding (§14)."""
    from toolkit.crafters.stun import StunSoftware

    message.attributes.insert(3, StunSoftware(text=b"abc", padding=b"\xff"))


def software_after_integrity(message, conversation):
    """SOFTWARE between MESSAGE-INTEGRITY and FINGERPRINT: to be ignored (§14.5)."""
    from toolkit.crafters.stun import StunSoftware

    message.attributes.insert(len(message.attributes) - 1, StunSoftware(text=b"rtcgate"))


def use_candidate_after_integrity(message, conversation):
    """USE-CANDIDATE after MESSAGE-INTEGRITY: unauthenticated, so it must not nominate anything."""
    from toolkit.crafters.stun import StunUseCandidate

    message.attributes.insert(len(message.attributes) - 1, StunUseCandidate())


def attribute_after_fingerprint(message, conversation):
    from toolkit.crafters.stun import StunSoftware

    message.attributes.append(StunSoftware(text=b"rtcgate"))


def duplicate_username(message, conversation):
    """A second USERNAME naming nobody after the right one: only the first counts (§14)."""
    from toolkit.crafters.stun import StunUsername

    message.attributes.insert(1, StunUsername(username=f"{random_text(conversation, 16)}:x".encode()))


# -- STUN-08: amplification ------------------------------------------------------------------


REASON_ALLOWANCE = 20
"""Bytes of reason phrase an unauthenticated error may carry beyond the request's size: the
longest phrase RFC 8489 §14.8 recommends for the codes it can answer with ("Unknown Attribute",
17 bytes) padded to 4."""
MANDATED_ERROR_ATTRIBUTES = {0x0009: "ERROR-CODE", 0x000A: "UNKNOWN-ATTRIBUTES", 0x8028: "FINGERPRINT"}
"""What RFC 8489 requires in an unauthenticated error: ERROR-CODE (§6.3.4), UNKNOWN-ATTRIBUTES
for a 420 (§14.9), FINGERPRINT (RFC 8445 §7: ICE checks use the FINGERPRINT mechanism)."""


def stun_attributes(data: bytes) -> list[tuple[int, bytes]] | None:
    """(type, value) of each attribute in a STUN message; None when the lengths do not add up."""
    attributes, offset = [], 20
    while offset + 4 <= len(data):
        kind = int.from_bytes(data[offset:offset + 2], "big")
        length = int.from_bytes(data[offset + 2:offset + 4], "big")
        end = offset + 4 + length
        if end > len(data):
            return None
        attributes.append((kind, data[offset + 4:end]))
        offset = end + (-length) % 4
    return attributes if offset == len(data) else None


def amplification_excuse(answer: bytes) -> str | None:
    """Why an answer larger than its request is still allowed, or None when it amplifies.

    RFC 8489 §9.1.3 mandates a 400 for a request without USERNAME or MESSAGE-INTEGRITY, and a
    400 with ERROR-CODE and FINGERPRINT is 48 bytes, more than a 28-byte request of header and
    FINGERPRINT: such an answer must pass. So an error response may exceed the request when it
    holds only the attributes RFC 8489 mandates (MANDATED_ERROR_ATTRIBUTES) and a reason phrase
    of at most REASON_ALLOWANCE bytes; anything else (a success, SOFTWARE, a long reason,
    MESSAGE-INTEGRITY, REALM/NONCE) must not be bigger than the request."""
    attributes = stun_attributes(answer)
    if len(answer) < 20 or answer[:2] != b"\x01\x11" or attributes is None:
        return None
    kinds = [kind for kind, _ in attributes]
    if any(kind not in MANDATED_ERROR_ATTRIBUTES for kind in kinds) or kinds.count(0x0009) != 1:
        return None
    code_value = dict(attributes)[0x0009]
    code = (code_value[2] & 0x07) * 100 + code_value[3] if len(code_value) >= 4 else 0
    if 0x000A in kinds and code != 420:
        return None
    reason = len(code_value) - 4
    if reason > REASON_ALLOWANCE:
        return None
    return f"error {code} with only {', '.join(MANDATED_ERROR_ATTRIBUTES[k] for k in kinds)} ({reason}-byte reason)"


async def amplification(conversation: Conversation) -> None:
    """Unauthenticated requests of every kind, from a fresh address; no answer may be bigger,
    except a bare error response RFC 8489 mandates (see `amplification_excuse`)."""
    from toolkit.crafters.stun import BINDING_REQUEST, StunFingerprint, StunMessage

    socket = conversation.socket("stranger")
    session = conversation.session("main")
    requests = {
        "unknown ufrag": crafted_check(username=unknown_ufrag)(conversation),
        "wrong password": check_request(password=WRONG_PASSWORD)(conversation),
        "no USERNAME": crafted_check(modify=without_username)(conversation),
        "no MESSAGE-INTEGRITY": check_request(message_integrity=False)(conversation),
        "header and FINGERPRINT only": bytes(StunMessage(type=BINDING_REQUEST, transaction_id=transaction_id(conversation),
                                                         attributes=[StunFingerprint()])),
        "bad FINGERPRINT": bad_fingerprint()(conversation),
        "unknown comprehension-required attribute, wrong password": check_request(
            password=WRONG_PASSWORD, extra_attributes=[(UNASSIGNED_REQUIRED_ATTRIBUTE, b"abcd")])(conversation),
    }
    sizes = {stun_transaction_id(data): (name, len(data)) for name, data in requests.items()}
    socket.mark = len(socket.inbox)
    for data in requests.values():
        socket.send(data, session.remote)
    await asyncio.sleep(conversation.settings.silence)
    answered = []
    for received in socket.inbox[socket.mark:]:
        entry = sizes.get(stun_transaction_id(received.data))
        if entry is None:
            raise CheckFailed(f"stranger socket got {len(received.data)} bytes that answer none of its requests")
        name, size = entry
        answered.append(f"{name}: {size} → {len(received.data)} bytes")
        if len(received.data) > size:
            excuse = amplification_excuse(received.data)
            if excuse is None:
                raise CheckFailed(f"amplification: the {size}-byte request with {name} got a {len(received.data)}-byte "
                                  f"answer carrying more than a bare RFC-mandated error (ERROR-CODE with a reason of "
                                  f"≤ {REASON_ALLOWANCE} bytes, UNKNOWN-ATTRIBUTES for 420, FINGERPRINT)")
            answered[-1] += f" (allowed: {excuse})"
    conversation.note("answers: " + ("; ".join(answered) if answered else "none (silence to every request)"))


# -- STUN-09: indications ---------------------------------------------------------------------


def binding_indication(session: str = "main"):
    def modify(message, conversation):
        from toolkit.crafters.stun import BINDING_INDICATION

        message.type = BINDING_INDICATION

    return crafted_check(session, modify=modify, use_candidate=True)


# -- STUN-10: IPv6 ----------------------------------------------------------------------------


def ipv6_candidate(conversation: Conversation) -> str | None:
    candidates = conversation.session("main").peer.answer.candidates
    if not any(":" in host for host, _ in candidates):
        return "the target offers no IPv6 candidate (it does not listen on IPv6)"
    return None


async def ipv6_check(conversation: Conversation) -> None:
    session = conversation.session("main")
    host, port = next((h, p) for h, p in session.peer.answer.candidates if ":" in h)
    socket = await conversation.open_socket("v6", session, host="::1" if host == "::1" else "::")
    data = check_request(use_candidate=False)(conversation)
    socket.mark = len(socket.inbox)
    socket.last_request_tid = stun_transaction_id(data)
    socket.last_request_to = (host, port)
    socket.send(data, (host, port))
    await Expect(StunSuccess(), via="v6").run(conversation)


CHECKS = (
    Check(
        "STUN-01", "core", "RFC 8489 §6.3, §14.2, RFC 8445 §7.3",
        "authenticated Binding request → success: same transaction ID, XOR-MAPPED-ADDRESS = the request's "
        "source, MESSAGE-INTEGRITY, FINGERPRINT",
        (
            Connect(),
            Send(check_request(use_candidate=False), label="authenticated Binding request"),
            Expect(StunSuccess()),
        ),
    ),
    Check(
        "STUN-02", "core", "RFC 8489 §9.1.3",
        "wrong MESSAGE-INTEGRITY → 401 (or silence), never success; no state change",
        (
            Connect(),
            Send(check_request(password=WRONG_PASSWORD, use_candidate=False), label="wrong MESSAGE-INTEGRITY"),
            Expect((StunError(401), Silence())),
            Socket("other"),
            Send(check_request(password=WRONG_PASSWORD), via="other", label="wrong MI + USE-CANDIDATE, new address"),
            Expect((StunError(401), Silence()), via="other"),
            Echo(),  # media still goes to the authenticated address
            BindsNothing("other"),  # and the forged check bound nothing
        ),
    ),
    Check(
        "STUN-03", "core", "RFC 8489 §9.1.3",
        "missing USERNAME or MESSAGE-INTEGRITY → 400 (or silence)",
        (
            Connect(),
            Send(crafted_check(modify=without_username, use_candidate=False), label="no USERNAME"),
            Expect((StunError(400), Silence())),
            Send(check_request(message_integrity=False, use_candidate=False), label="no MESSAGE-INTEGRITY"),
            Expect((StunError(400), Silence())),
            Alive(),
        ),
    ),
    Check(
        "STUN-04", "core", "RFC 8489 §14.7, RFC 8445 §7.3",
        "bad FINGERPRINT → silence",
        (
            Connect(),
            Send(bad_fingerprint(), label="bad FINGERPRINT"),
            Expect(Silence()),
            Socket("other"),
            Send(bad_fingerprint(use_candidate=True), via="other", label="bad FINGERPRINT + USE-CANDIDATE, new address"),
            Expect(Silence(), via="other"),
            Echo(),
            BindsNothing("other"),
        ),
    ),
    Check(
        "STUN-05", "core", "RFC 8489 §6.3.1.1, §14.9",
        "unknown comprehension-required attribute → 420 with UNKNOWN-ATTRIBUTES",
        (
            Connect(),
            Send(check_request(use_candidate=False, extra_attributes=[(UNASSIGNED_REQUIRED_ATTRIBUTE, b"abcd")]),
                 label="attribute 0x7f31"),
            Expect(StunError(420, unknown_attributes=[UNASSIGNED_REQUIRED_ATTRIBUTE])),
            Alive(),
        ),
    ),
    Check(
        "STUN-06", "security", "RFC 8489 §14, §14.5, §14.7",
        "attribute length past the end, odd lengths, non-zero padding, attributes after MESSAGE-INTEGRITY/"
        "FINGERPRINT, duplicate attributes → handled per RFC 8489 §14, no crash",
        (
            Connect(),
            Send(crafted_check(modify=length_past_end, use_candidate=False), label="attribute length past the end"),
            Expect((StunError(400), Silence())),
            Send(odd_message_length, label="message length not a multiple of 4"),
            Expect((StunError(400), Silence())),
            Send(crafted_check(modify=nonzero_padding, use_candidate=False), label="non-zero padding"),
            Expect(StunSuccess()),  # §14: padding content MUST be ignored
            Send(crafted_check(modify=software_after_integrity, use_candidate=False),
                 label="SOFTWARE after MESSAGE-INTEGRITY"),
            Expect(StunSuccess()),  # §14.5: attributes after MI (but FINGERPRINT) MUST be ignored
            Send(crafted_check(modify=attribute_after_fingerprint, use_candidate=False),
                 label="SOFTWARE after FINGERPRINT"),
            Expect((StunSuccess(), StunError(400), Silence())),
            Send(crafted_check(modify=duplicate_username, use_candidate=False), label="duplicate USERNAME"),
            Expect((StunSuccess(), StunError(400), Silence())),
            Socket("other"),
            Send(crafted_check(modify=use_candidate_after_integrity, use_candidate=False), via="other",
                 label="USE-CANDIDATE after MESSAGE-INTEGRITY, new address"),
            Expect((StunSuccess(), StunError(400), Silence()), via="other"),
            Alive(media=True),  # alive, and the unauthenticated USE-CANDIDATE moved nothing
        ),
    ),
    Check(
        "STUN-07", "security", "RFC 8445 §7.3, docs/architecture.md principle 2",
        "unknown ufrag → silence (no session enumeration, no reflection)",
        (
            Connect(),
            Send(crafted_check(username=unknown_ufrag, use_candidate=False), label="unknown ufrag"),
            Expect(Silence()),
            Socket("stranger", session=None),
            Send(crafted_check(username=unknown_ufrag), via="stranger", label="unknown ufrag, new address"),
            Expect(Silence(), via="stranger"),
            Alive(),
        ),
    ),
    Check(
        "STUN-08", "security", "RFC 8489 §16.1, §9.1.3, §14.8, RFC 5389 §17",
        "amplification: for every unauthenticated request, response bytes ≤ request bytes, except a bare error "
        "response RFC 8489 mandates (only ERROR-CODE with a reason of ≤ 20 bytes, UNKNOWN-ATTRIBUTES for 420, "
        "FINGERPRINT)",
        (
            Connect(),
            Socket("stranger", session=None),
            Do(amplification, "unauthenticated requests of every kind"),
            Alive(),
        ),
    ),
    Check(
        "STUN-09", "core", "RFC 8489 §6.3.2, RFC 7675 §5",
        "Binding indication → no response, refreshes nothing it must not",
        (
            Connect(),
            Send(binding_indication(), label="Binding indication"),
            Expect(Silence()),
            Socket("other"),
            Send(binding_indication(), via="other", label="Binding indication, new address"),
            Expect(Silence(), via="other"),
            BindsNothing("other"),  # an indication binds no address
            Echo(),
        ),
    ),
    Check(
        "STUN-10", "core", "RFC 8489 §14.2",
        "IPv6 source → XOR-MAPPED-ADDRESS family IPv6 (when the target listens on IPv6)",
        (
            Offer(),
            Require(ipv6_candidate, "an IPv6 candidate"),
            Connect(),
            Do(ipv6_check, "authenticated check from an IPv6 socket"),
        ),
    ),
)
