"""Search modifiers of issue 7, plugged into the search field table (``kinfile.query.fields``).

* ``cluster:"vhash <vhash> <YYYY-MM-DD>"``: the members of a daily cluster, i.e. files with that
  vhash first submitted on that UTC day (API_NOTES §3.4's suggested mapping). A cluster id of a
  window (``?days=N``) names its first day; the modifier always means that one day.
* ``similar-to:<md5|sha1|sha256>``: the other stored files sharing that file's vhash.

Both compile to plain SQL on ``files`` (the vhash column and the covering day index), so they are
not rate-limited fuzzy lookups. ``vhash:<value>`` itself belongs to the search field table.
:func:`register` is called on import by ``kinfile.clusters``, which the API and the CLI load.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from kinfile.hashing.digests import is_hash
from kinfile.hashing.vhash import is_vhash
from kinfile.query import fields
from kinfile.query.ast import Term
from kinfile.query.fields import Clause, Env, Field
from kinfile.query.values import bad_value

DAY = 86400
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ClusterField(Field):
    help = 'members of a daily vhash cluster: cluster:"vhash <vhash> <YYYY-MM-DD>"'

    def compile(self, term: Term, env: Env) -> Clause:
        parts = term.value.split()
        if len(parts) == 3 and parts[0].lower() == "vhash":
            parts = parts[1:]
        if len(parts) != 2 or not is_vhash(parts[0].lower()) or not DATE.fullmatch(parts[1]):
            raise bad_value(term, 'a cluster id "vhash <vhash> <YYYY-MM-DD>"')
        try:
            day = datetime.strptime(parts[1], "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise bad_value(term, 'a cluster id "vhash <vhash> <YYYY-MM-DD>"') from exc
        start = int(day.timestamp())
        f = env.files
        return sa.and_(
            f.c.vhash == parts[0].lower(),
            f.c.first_submission_date >= start,
            f.c.first_submission_date < start + DAY,
        )


class SimilarToField(Field):
    help = "files sharing the vhash of the file with this md5, sha1 or sha256"

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        kind = is_hash(value)
        if kind is None:
            raise bad_value(term, "an md5, sha1 or sha256")
        f = env.files
        source = f.alias("similar_to_source")
        vhash = sa.select(source.c.vhash).where(source.c[kind] == value, source.c.vhash.is_not(None))
        return sa.and_(f.c.vhash.in_(vhash), f.c[kind] != value)


def register() -> None:
    fields.register("cluster", ClusterField())
    fields.register("similar-to", SimilarToField())
