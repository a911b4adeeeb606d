"""Shared fixtures: settings on a temporary home, the store parametrised over both backends.

PostgreSQL: ``--postgres-dsn`` or ``$KINFILE_TEST_POSTGRES_DSN`` names a server; otherwise a
throwaway server is started from the installed binaries (tests/pgserver.py). When neither is
possible the PostgreSQL tests are skipped, except under CI (``CI=true``), where that fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kinfile.settings import Settings, load_settings

DATA = Path(__file__).parent / "data"
FOUNDATION = DATA / "foundation"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--postgres-dsn", default=None, help="PostgreSQL server for the backend contract tests")
    parser.addoption("--no-postgres", action="store_true", help="skip the PostgreSQL backend")


@pytest.fixture(scope="session")
def postgres_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    dsn = request.config.getoption("--postgres-dsn") or os.environ.get("KINFILE_TEST_POSTGRES_DSN")
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if dsn:
        yield dsn
        return
    if request.config.getoption("--no-postgres") and not in_ci:
        pytest.skip("PostgreSQL disabled with --no-postgres")
    from tests.pgserver import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        if in_ci:
            pytest.fail("CI must run the PostgreSQL suite, but no PostgreSQL binaries were found")
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        dsn = server.start()
    except Exception as exc:
        server.stop()
        if in_ci:
            pytest.fail(f"cannot start PostgreSQL: {exc}")
        pytest.skip(f"cannot start PostgreSQL: {exc}")
    try:
        yield dsn
    finally:
        server.stop()


def _fresh_postgres_url(dsn: str) -> Iterator[str]:
    """A fresh, empty schema per test (search_path set through the connection options)."""
    name = f"t_{secrets.token_hex(6)}"
    admin_url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}options=-csearch_path%3D{name}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kinfile.db'}"
        return
    dsn = request.getfixturevalue("postgres_dsn")
    yield from _fresh_postgres_url(dsn)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite settings on a temporary home (no environment, no config file)."""
    return load_settings({"home": str(tmp_path / "home")}, env={})


@pytest.fixture
def backend_settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings on a temporary home with the parametrised database backend."""
    return load_settings({"home": str(tmp_path / "home"), "db": db_url}, env={})


@pytest.fixture
def foundation_files() -> list[Path]:
    return sorted(p for p in FOUNDATION.iterdir() if p.name.endswith("_"))
