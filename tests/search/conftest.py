from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kinfile.services import Services
from kinfile.settings import load_settings
from kinfile.storage.store import FileRow
from tests.conftest import _fresh_postgres_url
from tests.search import corpus


class Loaded:
    def __init__(self, services: Services, attrs: dict[str, dict[str, Any]]) -> None:
        self.services = services
        self.attrs = attrs
        self.rows: dict[str, FileRow] = services.store.get_files(sorted(attrs))

    def where(self, predicate: Any) -> set[str]:
        return {sha for sha, row in self.rows.items() if predicate(row)}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``db_url`` but shared by a module's read-only tests (loading the corpus once)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('search') / 'kinfile.db'}"
        return
    yield from _fresh_postgres_url(request.getfixturevalue("postgres_dsn"))


@pytest.fixture(scope="module")
def loaded(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    home = tmp_path_factory.mktemp("home")
    services = Services(load_settings({"home": str(home), "db": module_db_url}, env={}))
    try:
        yield Loaded(services, corpus.load(services))
    finally:
        services.close()
