"""The catalog is data: every catalog ID (docs/checks.md) exists once, with a valid profile and real steps."""
from __future__ import annotations

from toolkit.conformance.checks import BY_ID, CATALOG
from toolkit.conformance.model import PROFILES
from toolkit.conformance.steps import Step

FAMILIES = {"DEMUX": 7, "STUN": 10, "ICE": 11, "MIGRATE": 10, "DTLS": 14, "SRTP": 10, "DC": 5, "VOICE": 5, "PERF": 4}


def test_every_catalog_id_exists_once_in_order():
    expected = [f"{family}-{n:02d}" for family, count in FAMILIES.items() for n in range(1, count + 1)]
    assert [check.id for check in CATALOG] == expected
    assert len(BY_ID) == len(CATALOG)


def test_checks_are_conversations_of_steps():
    for check in CATALOG:
        assert check.profile in PROFILES
        assert check.rfc and check.title
        assert check.steps and all(isinstance(step, Step) for step in check.steps), check.id
