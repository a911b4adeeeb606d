"""The one table of search modifiers: ``FIELDS`` maps a modifier name to a field object that
compiles a :class:`~kinfile.query.ast.Term` into a SQLAlchemy Core boolean clause.

Adding a modifier is one entry. Field kinds (one class per value type):

* :class:`IntField`, :class:`SizeField`, :class:`DateField` - a ``files`` column with ``N``,
  ``N+``, ``N-`` bounds;
* :class:`HashField`, :class:`LabelField`, :class:`ContainsField` - a ``files`` text column;
* :class:`SideField` / :class:`WordsField` - a side table ``(value, sha256)``;
* :class:`TypeField`, :class:`NameField`, :class:`EngineField`, :class:`EntityField`;
* :class:`IndexField` - **the extension point** for modifiers answered outside SQL (ssdeep,
  TLSH, and later ``content``, ``cluster``, ``similar-to``, ``clue``): ``search`` returns
  ``{sha256: context_attributes}`` and the compiler turns that into ``sha256 IN (...)``.

Columns and tables are named, not imported: the caller passes them in an :class:`Env`, so this
package stays independent of ``kinfile.storage``. Every value a side table holds is lower-case
(``kinfile.storage.searchable``); literals are lower-cased here to match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from kinfile.errors import InvalidArgumentError, UnsupportedContentQueryError
from kinfile.query.ast import Term
from kinfile.query.values import (
    Bound,
    bad_value,
    contains_pattern,
    has_wildcard,
    like_pattern,
    parse_date,
    parse_int,
    parse_size,
)

Clause = ColumnElement[bool]
HEX = re.compile(r"[0-9a-f]+")
HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}
WORD_SPLIT = re.compile(r"[^0-9a-z]+")


class Env(Protocol):
    """What a field needs from the search use-case while compiling."""

    dialect: str
    now: int
    files: sa.Table
    side: dict[str, sa.Table]

    def lookup(self, field: IndexField, term: Term) -> dict[str, dict[str, Any]]: ...

    def sha256_in(self, sha256s: Iterable[str]) -> Clause: ...

    def side_filter(self, table: sa.FromClause, clause: Clause, indexed: bool) -> Clause: ...

    def count(self, table: sa.FromClause, clause: Clause, cap: int) -> int: ...

    def detections(self, value: str, engine: str | None, wildcard: bool) -> Clause | None:
        """Files whose detection words match, when the store indexes them in its own way
        (``None``: through the ``av_words`` side table)."""
        ...


def words(text: str) -> list[str]:
    """Same tokenisation as ``kinfile.storage.searchable.words``."""
    return [w for w in WORD_SPLIT.split(text.lower()) if len(w) >= 2]


def _successor(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def text_match(column: Any, value: str, wildcard: bool) -> Clause:
    """Equality, or a LIKE when ``*`` wildcards are used (a leading-only ``*`` keeps a range)."""
    if not wildcard:
        return column == value
    pattern = like_pattern(value)
    clause = column.like(pattern, escape="\\")
    prefix = value.split("*", 1)[0]
    if prefix:  # lets a B-tree narrow the scan to the prefix's range
        clause = sa.and_(column >= prefix, column < _successor(prefix), clause)
    return clause


def _nonnull(column: Any, clause: Clause) -> Clause:
    """NULL-safe: ``NOT`` of a column test then includes files without the column."""
    return sa.and_(column.is_not(None), clause)


def _limits(column: Any) -> tuple[int, int]:
    """The values an integer column can hold: 32 bits for ``Integer`` (PostgreSQL), else 64."""
    kind = getattr(column, "type", None)
    bits = 31 if isinstance(kind, sa.Integer) and not isinstance(kind, sa.BigInteger) else 63
    return -(2**bits), 2**bits - 1


def _range(column: Any, bound: Bound) -> Clause:
    """``low <= column < high``, with bounds beyond what the column can hold resolved here (a
    bound past the range matches nothing; one before it is no bound), so no out-of-range
    number reaches the database (SQLite cannot bind it, PostgreSQL raises: both answer alike)."""
    lowest, highest = _limits(column)
    low, high = bound.low, bound.high
    if (low is not None and low > highest) or (high is not None and high <= lowest):
        return sa.false()
    parts: list[Clause] = [column.is_not(None)]
    if low is not None and low > lowest:
        parts.append(column >= low)
    if high is not None and high <= highest:
        parts.append(column < high)
    return sa.and_(*parts)


class Field:
    """Base class. ``fuzzy`` marks expensive similarity modifiers (rate limited per key)."""

    help = ""
    fuzzy = False

    def compile(self, term: Term, env: Env) -> Clause:
        raise NotImplementedError


@dataclass
class IntField(Field):
    column: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        return _range(env.files.c[self.column], parse_int(term))


@dataclass
class SizeField(Field):
    column: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        return _range(env.files.c[self.column], parse_size(term))


@dataclass
class DateField(Field):
    column: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        return _range(env.files.c[self.column], parse_date(term, env.now))


@dataclass
class SubspanField(Field):
    """Seconds between the compile time stamp and the first submission."""

    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        f = env.files.c
        span = f.first_submission_date - f.creation_date
        bound = parse_int(term)
        clause = _range(span, bound)
        return sa.and_(f.creation_date.is_not(None), f.first_submission_date.is_not(None), clause)


@dataclass
class HashField(Field):
    """Exact hash (any case); ``*`` allowed for prefixes (``imphash:af457a*``)."""

    column: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        if not value:
            raise bad_value(term, "a hash")
        column = env.files.c[self.column]
        return _nonnull(column, text_match(column, value, has_wildcard(term)))


@dataclass
class LabelField(Field):
    """A lower-cased text column matched whole (``*`` wildcards allowed)."""

    column: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        column = env.files.c[self.column]
        return _nonnull(column, text_match(column, term.value.strip().lower(), has_wildcard(term)))


@dataclass
class ContainsField(Field):
    """A text column that contains the literal, case-insensitively (``magic:``, ``magika:``)."""

    column: str
    exact: bool = False
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        column = sa.func.lower(env.files.c[self.column])
        value = term.value.strip().lower()
        if self.exact and not has_wildcard(term):
            clause = column == value
        elif has_wildcard(term):
            clause = column.like(like_pattern(value), escape="\\")
        else:
            clause = column.like(contains_pattern(value), escape="\\")
        return _nonnull(env.files.c[self.column], clause)


def side_in(env: Env, side: str, clause: Clause, indexed: bool = True) -> Clause:
    """Files with a row of side table ``side`` matching ``clause``. ``indexed`` says the clause
    can use the ``(value, sha256)`` key (equality or prefix), so its density can be probed."""
    return env.side_filter(env.side[side], clause, indexed)


@dataclass
class SideField(Field):
    """A side table value equals the literal (lower-cased; ``*`` wildcards allowed)."""

    side: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        if not value:
            raise bad_value(term, "a non-empty value")
        column = env.side[self.side].c.value
        return side_in(env, self.side, text_match(column, value, has_wildcard(term)))


@dataclass
class WordsField(Field):
    """Whole values or words of a side table: every word of the literal must be present."""

    side: str
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        column = env.side[self.side].c.value
        if has_wildcard(term) or not value.split():
            if not value.strip("*"):
                raise bad_value(term, "a word")
            return side_in(env, self.side, text_match(column, value, has_wildcard(term)))
        parts = words(value)
        whole = side_in(env, self.side, column == value[:512])
        if len(value.split()) == 1 or not parts:
            return whole
        return sa.or_(whole, sa.and_(*(side_in(env, self.side, column == w) for w in parts)))


TRIGRAM = 3
TRIGRAM_PROBES = 4  # trigrams of a pattern whose frequency is probed
TRIGRAM_LIST = 5_000  # below this many names, the rarest trigram's files are the candidates
TRIGRAM_SAMPLE = 256  # files of a frequent trigram sampled to estimate the pattern's density
TRIGRAM_DENSE = 16  # sampled matches from which the query probes each file it walks
TRIGRAM_MERGED = 3  # frequent trigrams intersected when the pattern itself is rare


def query_trigrams(value: str, wildcard: bool, ascii_only: bool = True) -> list[str]:
    """The trigrams every name matching the pattern holds, likely rarest first: digits and
    punctuation before letters. ``ascii_only``: ASCII ones only, for a database whose ``lower()``
    may fold other letters unlike Python (PostgreSQL by its locale); kinfile's SQLite connections
    fold with Python's (store.unicode_lower), as the stored trigrams were."""
    segments = value.split("*") if wildcard else [value]
    grams = {
        s[i : i + TRIGRAM]
        for s in segments
        for i in range(len(s) - TRIGRAM + 1)
        if s[i : i + TRIGRAM].isascii() or not ascii_only
    }
    return sorted(grams, key=lambda g: (-sum(not c.isalpha() for c in g), value.find(g), g))


def names_contain(env: Env, value: str, wildcard: bool) -> Clause:
    """Files with a submitted name matching ``value`` (contains, or the ``*`` pattern), exactly
    as ``lower(name) LIKE pattern``, with candidates from ``file_name_trigrams``:

    * a rare trigram (< :data:`TRIGRAM_LIST` names): its files, checked against the next rarest;
    * all frequent, and the pattern is frequent among a sample of the rarest one's files: each
      file the query walks (in page order) is probed - a page needs few of them;
    * all frequent, the pattern rare: the intersection of a few trigrams' files (merged scans).

    The exact LIKE then runs on the candidates. Patterns without a 3-character literal scan."""
    names = env.side["names"]
    pattern = like_pattern(value) if wildcard else contains_pattern(value)
    exact = sa.func.lower(names.c.value).like(pattern, escape="\\")
    grams = query_trigrams(value, wildcard, ascii_only=env.dialect != "sqlite")
    if not grams:
        return side_in(env, "names", exact, indexed=False)
    tri = env.side["name_trigrams"]
    probed = [
        (env.count(tri, tri.c.value == g, TRIGRAM_LIST), i, g) for i, g in enumerate(grams[:TRIGRAM_PROBES])
    ]
    ranked = [(n, g) for n, _i, g in sorted(probed)]  # ties (capped counts) keep the likely-rarest order
    rarest = ranked[0][1]
    if ranked[0][0] < TRIGRAM_LIST:
        candidates = sa.select(tri.c.sha256).where(tri.c.value == rarest)
        if len(ranked) > 1:
            other = tri.alias("other_trigram")
            candidates = candidates.where(
                sa.exists().where(other.c.value == ranked[1][1], other.c.sha256 == tri.c.sha256)
            )
        return env.files.c.sha256.in_(sa.select(names.c.sha256).where(names.c.sha256.in_(candidates), exact))
    sample = sa.select(tri.c.sha256.label("sha256")).where(tri.c.value == rarest).limit(TRIGRAM_SAMPLE)
    sampled = sample.subquery()
    hits = sa.select(sampled.c.sha256).where(sa.exists().where(names.c.sha256 == sampled.c.sha256, exact))
    if env.count(hits.subquery(), sa.true(), TRIGRAM_DENSE) >= TRIGRAM_DENSE:
        return sa.and_(
            sa.exists().where(tri.c.value == rarest, tri.c.sha256 == env.files.c.sha256),
            sa.exists().where(names.c.sha256 == env.files.c.sha256, exact),
        )
    merged = sa.intersect(*(sa.select(tri.c.sha256).where(tri.c.value == g) for g in grams[:TRIGRAM_MERGED]))
    return env.files.c.sha256.in_(sa.select(names.c.sha256).where(names.c.sha256.in_(merged), exact))


@dataclass
class NameField(Field):
    """A submitted file name contains the literal (case-insensitive; ``*`` wildcards anchor)."""

    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        if not value:
            raise bad_value(term, "a non-empty name")
        return names_contain(env, value, has_wildcard(term))


# VirusTotal type literals that are not themselves one of kinfile's type tags
TYPE_ALIASES = {
    "js": "javascript",
    "pe": "pe",
    "exe": "peexe",
    "dll": "pedll",
    "word": "word",
    "bzip": "bzip2",
    "7z": "7zip",
    "ps": "postscript",
    "mac": "mac",
    "ps1": "powershell",
    "vbscript": "vbs",
    "gz": "gzip",
}


@dataclass
class TypeField(Field):
    """``type:`` - the file's ``type_tag`` or any of its ``type_tags``."""

    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        if not value:
            raise bad_value(term, "a file type such as peexe, pdf, document")
        value = TYPE_ALIASES.get(value, value)
        tag = env.files.c.type_tag
        return sa.or_(
            _nonnull(tag, tag == value), side_in(env, "type_tags", env.side["type_tags"].c.value == value)
        )


@dataclass
class EngineField(Field):
    """``engines:<label>`` (any engine) or ``<engine>:<label>``: a label or a word of it."""

    engine: str | None = None
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        if not value.strip("*"):
            raise bad_value(term, "a detection label")
        wildcard = has_wildcard(term)
        found = env.detections(value, self.engine, wildcard)
        if found is not None:
            return found
        table = env.side["av_words"]
        if self.engine is None:
            if wildcard:
                # as 0002's pattern "*:<value>" matched (its "*" was a wildcard too): a label or
                # word, or the rest of a label after one of its colons
                pattern = like_pattern(value)
                clause = sa.or_(
                    table.c.value.like(pattern, escape="\\"), table.c.value.like(f"%:{pattern}", escape="\\")
                )
                return side_in(env, "av_words", clause)
            return side_in(env, "av_words", table.c.value == value)
        engine = self.engine.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clause = sa.and_(
            text_match(table.c.value, value, wildcard), table.c.engines.like(f"%,{engine},%", escape="\\")
        )
        return side_in(env, "av_words", clause)


@dataclass
class EntityField(Field):
    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        if term.value.strip().lower() != "file":
            raise InvalidArgumentError(
                f"entity {term.value!r} is not supported: only entity:file is searchable",
                span=term.value_span,
            )
        return sa.true()


@dataclass
class BareField(Field):
    """A bare word: a md5/sha1/sha256 is a hash lookup, anything else is free text over the
    file's names, tags, metadata and signature."""

    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        value = term.value.strip().lower()
        kind = HASH_LENGTHS.get(len(value)) if HEX.fullmatch(value) else None
        if kind and not term.quoted:
            return env.files.c[kind] == value
        if not value:
            raise bad_value(term, "a word")
        parts = [
            names_contain(env, value, False),
            side_in(env, "tags", env.side["tags"].c.value == value),
        ]
        for side in ("metadata", "signature"):
            parts.append(side_in(env, side, env.side[side].c.value == value[:512]))
        return sa.or_(*parts)


class IndexField(Field):
    """Extension point: a modifier answered by an index, not by SQL.

    Subclasses implement :meth:`search`, returning ``{sha256: context_attributes}`` (the dict
    may be empty). The search use-case runs it under the query's deadline and row cap
    (``env.lookup``); the compiler turns the hits into ``sha256 IN (...)`` and every hit's
    context attributes are attached to the result objects.
    """

    def search(self, term: Term, env: Any) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def compile(self, term: Term, env: Env) -> Clause:
        return env.sha256_in(env.lookup(self, term))


class SsdeepField(IndexField):
    """``ssdeep:"<hash> [threshold]"`` - files whose ssdeep ``compare`` score ≥ threshold."""

    fuzzy = True
    help = "ssdeep similarity (exact 7-gram index); optional threshold 1-100, default 1"

    def search(self, term: Term, env: Any) -> dict[str, dict[str, Any]]:
        from kinfile.similarity.ssdeep_index import DEFAULT_THRESHOLD, parse_ssdeep

        digest, threshold = _hash_and_number(term, DEFAULT_THRESHOLD, 1, 100)
        if parse_ssdeep(digest) is None:
            raise bad_value(term, 'an ssdeep hash "blocksize:sig1:sig2", optionally followed by a threshold')
        hits = env.similarity.ssdeep(digest, int(threshold), env.deadline)
        return {sha: {"similarity_score": score / 100.0} for sha, score in hits.items()}


class TlshField(IndexField):
    """``tlsh:"<T1...> [max distance]"`` - files within a TLSH distance (default 70)."""

    fuzzy = True
    help = "TLSH similarity (exact); optional maximum distance, default 70"

    def search(self, term: Term, env: Any) -> dict[str, dict[str, Any]]:
        from kinfile.similarity.tlsh_index import DEFAULT_MAX_DISTANCE, parse_tlsh, similarity_score

        digest, distance = _hash_and_number(term, DEFAULT_MAX_DISTANCE, 0, 1000)
        if parse_tlsh(digest) is None:
            raise bad_value(term, 'a TLSH digest "T1" + 70 hex, optionally followed by a maximum distance')
        hits = env.similarity.tlsh(digest, int(distance), env.deadline)
        return {
            sha: {"similarity_score": similarity_score(d, int(distance)), "tlsh_distance": d}
            for sha, d in hits.items()
        }


def _hash_and_number(term: Term, default: int, low: int, high: int) -> tuple[str, int]:
    parts = term.value.split()
    if not parts or len(parts) > 2:
        raise bad_value(term, "a hash, optionally followed by a number")
    number = default
    if len(parts) == 2:
        if not re.fullmatch(r"[0-9]{1,9}", parts[1]) or not low <= int(parts[1]) <= high:
            raise bad_value(term, f"a number from {low} to {high} after the hash")
        number = int(parts[1])
    return parts[0], number


def _columns(*names: str) -> dict[str, Field]:
    return {name: HashField(name) for name in names}


# VirusTotal's per-engine modifiers (docs/search-modifiers-full-list); engines kinfile runs
# itself are added with register_engine().
ENGINE_NAMES: set[str] = set(
    [
        "acronis",
        "ad-aware",
        "aegislab",
        "ahnlab-v3",
        "alibaba",
        "alyac",
        "antiy-avl",
        "apex",
        "arcabit",
        "avast",
        "avast-mobile",
        "avg",
        "avira",
        "baidu",
        "bitdefender",
        "bitdefenderfalx",
        "bitdefendertheta",
        "bkav",
        "cat-quickheal",
        "clamav",
        "cmc",
        "comodo",
        "crowdstrike",
        "cybereason",
        "cylance",
        "cynet",
        "cyren",
        "deepinstinct",
        "drweb",
        "elastic",
        "emsisoft",
        "escan",
        "eset-nod32",
        "f-prot",
        "f-secure",
        "fireeye",
        "fortinet",
        "gdata",
        "google",
        "gridinsoft",
        "ikarus",
        "jiangmin",
        "k7antivirus",
        "k7gw",
        "kaspersky",
        "kingsoft",
        "lionic",
        "malwarebytes",
        "maxsecure",
        "mcafee",
        "mcafee-gw-edition",
        "microsoft",
        "microworld-escan",
        "nano-antivirus",
        "paloalto",
        "panda",
        "qihoo-360",
        "rising",
        "sangfor",
        "sentinelone",
        "skyhigh",
        "sophos",
        "superantispyware",
        "symantec",
        "symantecmobileinsight",
        "tachyon",
        "tencent",
        "trapmine",
        "trellix",
        "trendmicro",
        "trendmicro-housecall",
        "varist",
        "vba32",
        "vipre",
        "virit",
        "virobot",
        "webroot",
        "xcitium",
        "yandex",
        "yara",
        "zillya",
        "zonealarm",
        "zoner",
    ]
)

FIELDS: dict[str, Field] = {
    "entity": EntityField(help="entity:file (the default and only entity)"),
    "type": TypeField(help="file type literal: peexe, pedll, pdf, doc, elf, document, ..."),
    "size": SizeField("size", help="size in bytes or kb/mb, with + or -"),
    "fs": DateField("first_submission_date", help="first submission date"),
    "ls": DateField("last_submission_date", help="last submission date"),
    "la": DateField("last_analysis_date", help="last analysis date"),
    "positives": IntField("positives", help="number of engines detecting the file"),
    "submissions": IntField("times_submitted", help="number of submissions"),
    "sources": IntField("unique_sources", help="number of distinct submitters"),
    "reputation": IntField("reputation", help="community reputation score"),
    "name": NameField(help="a submitted file name contains the literal"),
    "tag": SideField("tags", help="a tag of the file"),
    "engines": EngineField(help="any engine's detection label (or a word of it)"),
    "md5": HashField("md5"),
    "sha1": HashField("sha1"),
    "sha256": HashField("sha256"),
    **_columns(
        "imphash",
        "vhash",
        "authentihash",
        "rich_pe_header_hash",
        "main_icon_dhash",
        "main_icon_md5",
        "telfhash",
    ),
    "ssdeep": SsdeepField(),
    "tlsh": TlshField(),
    "metadata": WordsField("metadata", help="metadata (ExifTool, Office, ELF header, ...) value or words"),
    "signature": WordsField("signature", help="signature_info value or words"),
    "lang": WordsField("langs", help="resource or document language"),
    "creation_date": DateField("creation_date", help="compile time stamp"),
    "subspan": SubspanField(help="seconds between compile time stamp and first submission"),
    "section": SideField("sections", help="section name (PE, ELF, Mach-O)"),
    "sectionmd5": SideField("section_md5s", help="PE section md5"),
    "imports": SideField("imports", help="imported library or function"),
    "exports": SideField("exports", help="exported function"),
    "peresource": SideField("resources", help="sha256 of a PE resource"),
    "have": SideField("have", help="the report has this attribute (imphash, tlsh, overlay, ...)"),
    "magic": ContainsField("magic", help="libmagic description contains the literal"),
    "magika": ContainsField("magika", exact=True, help="Magika label"),
    "packer": WordsField("packers", help="packer name"),
    "netguid": SideField("netguids", help=".NET module or typelib GUID"),
    "suggested_threat_label": LabelField("suggested_threat_label", help="popular threat label"),
    "crowdsourced_yara_rule": SideField("yara_rules", help="matching YARA rule, or <ruleset_id>|<rule>"),
}
ALIASES = {
    "p": "positives",
    "s": "submissions",
    "generated": "creation_date",
    "gen": "creation_date",
    "pets": "creation_date",
    "petimestamp": "creation_date",
    "sigcheck": "signature",
    "filename": "name",
}
FIELDS.update({alias: FIELDS[target] for alias, target in ALIASES.items()})
BARE = BareField()


@dataclass
class ContentField(Field):
    """``content:`` (VTGrep) is answered by the content index (kinfile.content_search), never
    compiled to SQL: reaching here means it was OR-ed or negated."""

    help: str = ""

    def compile(self, term: Term, env: Env) -> Clause:
        raise UnsupportedContentQueryError(
            "content: can only be AND-ed with other terms, not OR-ed or negated", span=term.span
        )


FIELDS["content"] = ContentField(help="VTGrep: the file or a sub-file contains the bytes")


def register(name: str, field: Field) -> None:
    """Add (or replace) a modifier: later features plug their index fields in here."""
    FIELDS[name.lower()] = field


def register_engine(name: str) -> None:
    """Make ``<name>:<label>`` a modifier (an engine kinfile runs, e.g. a YARA or ClamAV engine)."""
    ENGINE_NAMES.add(re.sub(r"[^0-9a-z_\-]", "", name.lower()))


def field_for(term: Term) -> Field:
    if term.modifier is None:
        return BARE
    found = FIELDS.get(term.modifier)
    if found is not None:
        return found
    if term.modifier in ENGINE_NAMES:
        return EngineField(term.modifier)
    valid = ", ".join(sorted(FIELDS))
    end = term.span[0] + len(term.modifier)
    raise InvalidArgumentError(
        f"unknown modifier {term.modifier!r} at {term.span[0]}; valid: {valid}, "
        "and <engine>:<label> for an engine name (e.g. microsoft:trojan)",
        span=(term.span[0], end),
    )
