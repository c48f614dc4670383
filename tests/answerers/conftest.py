"""`catalog_runs`: the whole catalog against every answerer the selected tests name, played once
for all of them (catalog_runs.py: the untimed checks against all at once, then the timed ones in
turn). A test names its answerer with `@pytest.mark.catalog_target(NAME)` and asks
`catalog_runs.of(NAME)` for that answerer's run; an answerer that is missing or does not start
skips or fails that test alone, as it would have had it been started by the test itself."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.answerers.answerers import started
from tests.answerers.catalog_runs import CatalogRun, play_catalogs

MARKER = "catalog_target"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(name): the answerer whose catalog run the test judges")


class CatalogRuns:
    def __init__(self) -> None:
        self.runs: dict[str, CatalogRun] = {}
        self.problems: dict[str, BaseException] = {}

    def of(self, name: str) -> CatalogRun:
        """`name`'s run; raises what kept it from starting (a skip, a failure) if something did."""
        if name in self.problems:
            raise self.problems[name]
        return self.runs[name]


@pytest.fixture(scope="package")
def catalog_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogRuns]:
    names = sorted({marker.args[0] for item in request.session.items if "catalog_runs" in item.fixturenames
                    for marker in item.iter_markers(MARKER)})
    outcome = CatalogRuns()
    root = tmp_path_factory.mktemp("catalog")
    with ExitStack() as stack:
        answerers = []
        for name in names:
            try:
                answerers.append(stack.enter_context(started(name, root / f"{name}-workdir")))
            except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
                outcome.problems[name] = exc
        outcome.runs = play_catalogs(answerers, root)
    yield outcome
