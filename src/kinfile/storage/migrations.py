"""Named, ordered migrations recorded in ``schema_migrations``; the same set runs on both dialects.

A migration is a function of a SQLAlchemy connection. Add new ones at the end of
:data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, select

from kinfile.storage import schema

logger = logging.getLogger(__name__)

Migration = tuple[str, Callable[[Connection], None]]


def _initial(conn: Connection) -> None:
    schema.metadata.create_all(conn, checkfirst=True)


MIGRATIONS: list[Migration] = [
    ("0001_initial", _initial),
]


def applied(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "schema_migrations"):
            return set()
        return set(conn.execute(select(schema.schema_migrations.c.name)).scalars())


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations in order, each in its own transaction. Returns their names."""
    done = applied(engine)
    ran: list[str] = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with engine.begin() as conn:
            if name == "0001_initial" or engine.dialect.has_table(conn, "schema_migrations"):
                step(conn)
            conn.execute(schema.schema_migrations.insert().values(name=name, applied=int(time.time())))
        logger.info("applied migration %s", name)
        ran.append(name)
    return ran
