import os
import random

from reference_server.credentials import ICE_CHARS, PASSWORD_LENGTH, make_password, make_ufrag, ufrag_worker

SECRET = b"s" * 32


def test_ufrag_carries_an_authenticated_worker_id():
    for worker in (0, 7, 255):
        ufrag = make_ufrag(worker, SECRET, os.urandom)
        assert ufrag_worker(ufrag, SECRET) == worker
        assert set(ufrag) <= set(ICE_CHARS)


def test_forged_or_foreign_ufrags_do_not_route():
    ufrag = make_ufrag(3, SECRET, os.urandom)
    tampered = ufrag[:2] + ("0" if ufrag[2] != "0" else "1") + ufrag[3:]
    assert ufrag_worker(tampered, SECRET) is None
    assert ufrag_worker(ufrag, b"other secret") is None
    assert ufrag_worker("short", SECRET) is None
    assert ufrag_worker("zz" + ufrag[2:], SECRET) is None


def test_ufrags_are_unpredictable_and_passwords_long():
    ufrags = {make_ufrag(0, SECRET, os.urandom) for _ in range(2000)}
    assert len(ufrags) == 2000
    # The random part is ≥ 24 bits: consecutive ufrags share no counter-like structure.
    randoms = sorted(int(u[2:10], 16) for u in ufrags)
    assert randoms[-1] - randoms[0] > 1 << 24
    pwd = make_password(os.urandom)
    assert len(pwd) == PASSWORD_LENGTH and len(pwd) * 6 >= 128
    assert set(pwd) <= set(ICE_CHARS)


def test_injected_randomness_makes_credentials_reproducible():
    a = random.Random(1)
    b = random.Random(1)
    assert make_ufrag(1, SECRET, a.randbytes) == make_ufrag(1, SECRET, b.randbytes)
    assert make_password(a.randbytes) == make_password(b.randbytes)
