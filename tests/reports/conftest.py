from __future__ import annotations

import pytest

from tests.reports.sample import sample_run
from toolkit.conformance.runner import RunResult


@pytest.fixture
def run() -> RunResult:
    return sample_run()
