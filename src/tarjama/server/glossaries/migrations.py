"""The glossary database's schema, as numbered migrations applied in order, each once.

`tarjama_schema` records the versions applied. A server applies the missing ones when it first
reaches the database, in one transaction per migration (PostgreSQL: under an advisory lock, so two
replicas starting together do not both apply one). A database from a newer Tarjama (a version this
code does not know) is refused rather than written with an older idea of its tables.

The SQL is the common part of SQLite's and PostgreSQL's: TEXT and INTEGER columns, times as RFC 3339
text in UTC (which sorts as time does).
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "stored glossaries and their entries",
        (
            """CREATE TABLE glossaries (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                source_lang TEXT NOT NULL,
                target_lang TEXT NOT NULL,
                entry_count INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL
            )""",
            """CREATE TABLE glossary_entries (
                glossary_id TEXT NOT NULL REFERENCES glossaries (id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                source TEXT NOT NULL,
                target TEXT NOT NULL,
                PRIMARY KEY (glossary_id, position)
            )""",
            "CREATE INDEX glossaries_by_creation ON glossaries (created_at)",
        ),
    ),
)

SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS tarjama_schema (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

LATEST = MIGRATIONS[-1][0]
