"""`pytest --rtc-fuzz-time S`: fuzz each built-in target for S seconds instead of replaying it."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rtc-fuzz-time", type=float, default=None, metavar="S",
                     help="fuzz each rtcgate fuzz target for S seconds (atheris) instead of replaying its corpus")


@pytest.fixture
def rtc_fuzz_time(request: pytest.FixtureRequest) -> float | None:
    return request.config.getoption("--rtc-fuzz-time")
