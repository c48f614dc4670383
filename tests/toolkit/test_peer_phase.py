"""The probe peer's phases: the one table, the one move, and the moves the peer makes in its real
flows (every one of them through `phase.advance`, so an illegal one would raise here)."""

from __future__ import annotations

import pytest

from tests.support.phases import assert_documented, every_move, refused
from tests.toolkit.test_peer import (
    PEER_ADDR,
    SERVER_ADDR,
    DtlsServerEnd,
    answer_sdp,
    connect,
    drain_events,
    new_peer,
    stun_reply,
)
from toolkit.peer import IllegalTransition, PeerFailed, PeerPhase
from toolkit.peer import core as peer_core
from toolkit.peer.phase import TRANSITIONS, advance

P = PeerPhase
LEGAL = {
    (P.NEW, P.CHECKING), (P.NEW, P.CLOSED),
    (P.CHECKING, P.DTLS), (P.CHECKING, P.FAILED), (P.CHECKING, P.CLOSED),
    (P.DTLS, P.CONNECTED), (P.DTLS, P.FAILED), (P.DTLS, P.CLOSED),
    (P.CONNECTED, P.FAILED), (P.CONNECTED, P.CLOSED),
    (P.FAILED, P.CLOSED),
}
"""The documented life of a probe peer, written out independently of TRANSITIONS."""


def test_the_table_is_the_documented_one_and_names_every_phase():
    assert_documented(TRANSITIONS, PeerPhase, LEGAL)


@every_move(PeerPhase)
def test_every_transition_is_allowed_or_raises(current, to):
    if (current, to) in LEGAL:
        assert advance(current, to) is to
    else:
        with refused(IllegalTransition, "probe peer", current, to):
            advance(current, to)


def test_a_phase_reads_as_the_string_callers_test():
    assert P.CONNECTED == "connected" and f"{P.CHECKING}" == "checking" and str(P.FAILED) == "failed"
    assert repr(P.CHECKING) == "'checking'"  # messages that quote a state read as they always did


def test_the_state_moves_only_through_advance():
    peer = new_peer()
    assert peer.state is P.NEW
    with pytest.raises(AttributeError):
        peer.state = P.CONNECTED


@pytest.fixture
def moves(monkeypatch) -> list[tuple[PeerPhase, PeerPhase]]:
    """Every move the peer makes, recorded on its way through phase.advance."""
    recorded: list[tuple[PeerPhase, PeerPhase]] = []

    def recording(current: PeerPhase, to: PeerPhase) -> PeerPhase:
        recorded.append((current, to))
        return advance(current, to)

    monkeypatch.setattr(peer_core, "advance", recording)
    return recorded


def test_connect_then_close(moves):
    peer = new_peer()
    connect(peer, DtlsServerEnd())
    peer.close(1.0)
    peer.close(2.0)  # a second close changes nothing
    assert moves == [(P.NEW, P.CHECKING), (P.CHECKING, P.DTLS), (P.DTLS, P.CONNECTED), (P.CONNECTED, P.CLOSED)]


def test_the_target_closes(moves):
    peer = new_peer()
    server = DtlsServerEnd()
    connect(peer, server)
    server.close_notify(peer, 2.0)
    assert moves[-1] == (P.CONNECTED, P.CLOSED) and peer.state is P.CLOSED


def test_ice_fails_then_the_caller_closes(moves):
    peer = new_peer()
    peer.set_answer(answer_sdp(DtlsServerEnd().fingerprint))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR, error=(401, "Unauthorized")), SERVER_ADDR, 0.01)
    assert isinstance(drain_events(peer)[-1], PeerFailed)
    peer.close(1.0)
    assert moves == [(P.NEW, P.CHECKING), (P.CHECKING, P.FAILED), (P.FAILED, P.CLOSED)]


def test_a_handshake_that_never_completes_fails_from_dtls(moves):
    peer = new_peer(consent_interval=None)
    peer.set_answer(answer_sdp(DtlsServerEnd().fingerprint))
    peer.start(0.0)
    [(check, _)] = peer.datagrams_to_send()
    peer.receive_datagram(stun_reply(check, PEER_ADDR), SERVER_ADDR, 0.0)
    while (when := peer.get_timer()) is not None:
        peer.handle_timer(when)
    assert moves == [(P.NEW, P.CHECKING), (P.CHECKING, P.DTLS), (P.DTLS, P.FAILED)]


def test_closing_before_start(moves):
    peer = new_peer()
    peer.close(0.0)
    assert moves == [(P.NEW, P.CLOSED)] and peer.get_timer() is None
