"""Every built-in fuzz target replays its seed corpus and every regression ever found.

With `--rtc-fuzz-time S` (an option of rtcgate's pytest plugin) each target is fuzzed for S
seconds instead; findings are triaged like `rtcgate fuzz --corpus-dir toolkit/corpora` does
(reproducers under toolkit/corpora/regressions/<target>/, where this test replays them from
then on) and fail the test.
"""
from __future__ import annotations

import pytest

from toolkit import resources
from toolkit.fuzz import builtin_targets, replay
from toolkit.fuzz.campaign import Campaign, run
from toolkit.fuzz.triage import triage

CORPORA = resources.corpora()
TARGETS = builtin_targets()


@pytest.mark.parametrize("name", list(TARGETS))
def test_target(name: str, rtc_fuzz_time: float | None, tmp_path, pytestconfig: pytest.Config) -> None:
    if rtc_fuzz_time is not None:
        result = run(Campaign(spec=name, seconds=rtc_fuzz_time, corpus=tmp_path / "corpus",
                              reports=tmp_path / "reports", corpus_dir=pytestconfig.rootpath / "toolkit" / "corpora"))
        assert result.failure is None, result.failure
        report = triage(result, minimize_seconds=10)
        assert not report.findings, "\n".join(f"{f.error}: {f.message}\n  replay: {f.replay}" for f in report.findings)
        return
    seeds = CORPORA / name
    assert seeds.is_dir() and any(seeds.iterdir()), f"no seed corpus in {seeds}"
    outcomes = replay(TARGETS[name], [seeds, CORPORA / "regressions" / name])
    failures = [f"{o.path}: {o.error}: {o.message}" for o in outcomes if o.error is not None]
    assert not failures, "\n".join(failures)
