import pytest

from reference_server.sessions import TRANSITIONS, IllegalTransition, Session, SessionPhase, SessionTable
from tests.support.phases import assert_documented, every_move, refused


def make_session(sid: str, ufrag: str) -> Session:
    return Session(id=sid, ufrag=ufrag, pwd="p" * 24, remote_ufrag="r", remote_pwd="rp", created_at=0.0,
                   dtls=None, outbound=None, reception=None)


A1, A2, A3, A4 = (("127.0.0.1", p) for p in (5001, 5002, 5003, 5004))


def test_lookups_by_id_ufrag_and_bound_address():
    table = SessionTable()
    s = make_session("s1", "u1")
    table.add(s)
    assert table.by_id["s1"] is s and table.by_ufrag["u1"] is s
    assert A1 not in table.by_address
    table.bind(s, A1, 1.0, max_tuples=4)
    assert table.by_address[A1] is s
    table.remove(s)
    assert not table.by_id and not table.by_ufrag and not table.by_address


def test_cap_evicts_the_oldest_unselected_tuple():
    table = SessionTable()
    s = make_session("s1", "u1")
    table.add(s)
    table.bind(s, A1, 1.0, max_tuples=2)
    s.selected = A1
    table.bind(s, A2, 2.0, max_tuples=2)
    evicted = table.bind(s, A3, 3.0, max_tuples=2)
    assert evicted == [A2]  # A1 is older but selected
    assert set(s.tuples) == {A1, A3}
    assert A2 not in table.by_address


def test_rechecking_a_tuple_makes_it_youngest():
    table = SessionTable()
    s = make_session("s1", "u1")
    table.add(s)
    for t, a in enumerate((A1, A2, A3)):
        table.bind(s, a, float(t), max_tuples=3)
    table.bind(s, A1, 5.0, max_tuples=3)
    assert table.bind(s, A4, 6.0, max_tuples=3) == [A2]


def test_an_address_belongs_to_one_session_only():
    table = SessionTable()
    s1, s2 = make_session("s1", "u1"), make_session("s2", "u2")
    table.add(s1)
    table.add(s2)
    table.bind(s1, A1, 1.0, max_tuples=4)
    s1.selected = A1
    table.bind(s2, A1, 2.0, max_tuples=4)
    assert table.by_address[A1] is s2
    assert A1 not in s1.tuples and s1.selected is None


def test_restart_moves_the_ufrag_index():
    table = SessionTable()
    s = make_session("s1", "u1")
    table.add(s)
    table.set_credentials(s, "u2", "q" * 24)
    assert "u1" not in table.by_ufrag and table.by_ufrag["u2"] is s and s.pwd == "q" * 24


def test_stale_tuples_are_forgotten_but_not_the_selected_one():
    table = SessionTable()
    s = make_session("s1", "u1")
    table.add(s)
    table.bind(s, A1, 1.0, max_tuples=4)
    table.bind(s, A2, 2.0, max_tuples=4)
    s.selected = A1
    table.unbind_stale(s, older_than=10.0)
    assert list(s.tuples) == [A1] and A2 not in table.by_address


# -- phases: the transition table ------------------------------------------------------------------

P = SessionPhase
LEGAL = {
    (P.OFFERED, P.CHECKED), (P.OFFERED, P.CLOSED),
    (P.CHECKED, P.SELECTED), (P.CHECKED, P.DTLS_HANDSHAKING), (P.CHECKED, P.CLOSED),
    (P.SELECTED, P.DTLS_HANDSHAKING), (P.SELECTED, P.CLOSED),
    (P.DTLS_HANDSHAKING, P.CONNECTED), (P.DTLS_HANDSHAKING, P.CLOSED),
    (P.CONNECTED, P.CLOSED),
}
"""The documented life of a session, written out independently of TRANSITIONS."""
ROUTE = {P.OFFERED: (), P.CHECKED: (P.CHECKED,), P.SELECTED: (P.CHECKED, P.SELECTED),
         P.DTLS_HANDSHAKING: (P.CHECKED, P.DTLS_HANDSHAKING),
         P.CONNECTED: (P.CHECKED, P.SELECTED, P.DTLS_HANDSHAKING, P.CONNECTED), P.CLOSED: (P.CLOSED,)}
"""A legal way from OFFERED to each phase."""


def session_in(phase: SessionPhase) -> Session:
    session = make_session("s1", "u1")
    for step in ROUTE[phase]:
        session.advance(step)
    assert session.phase is phase
    return session


def test_the_table_is_the_documented_one_and_names_every_phase():
    assert_documented(TRANSITIONS, SessionPhase, LEGAL)


@every_move(SessionPhase)
def test_every_transition_is_allowed_or_raises(current, to):
    session = session_in(current)
    if (current, to) in LEGAL:
        session.advance(to)
        assert session.phase is to
    else:
        with refused(IllegalTransition, "session s1", current, to):
            session.advance(to)
        assert session.phase is current  # a refused move changes nothing


def test_a_new_session_is_offered_and_its_phase_moves_only_through_advance():
    session = make_session("s1", "u1")
    assert session.phase is SessionPhase.OFFERED and not session.connected
    with pytest.raises(AttributeError):
        session.phase = SessionPhase.CONNECTED
    assert session_in(SessionPhase.CONNECTED).connected
