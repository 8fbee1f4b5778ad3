"""Where stored glossaries live: SQLite in --state-dir, or PostgreSQL for replicas that share them.

Both are one class over Python's database API: the same SQL (migrations.py), a connection opened on
first use and opened again after a failure, and every write in a transaction that is committed (and,
on SQLite, synced: `synchronous=FULL`) before the call returns, so an acknowledged glossary survives
a crash. Calls are blocking and serialised by a lock: `service.Glossaries` runs them on its own thread
and turns a database failure into UNAVAILABLE. Nothing is cached here: every call reads the database,
so a replica sees another's change at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ..errors import QuotaExceeded, StartupError
from .migrations import LATEST, MIGRATIONS, SCHEMA_TABLE

T = TypeVar("T")


class SchemaTooNew(Exception):
    """The database was migrated by a newer Tarjama than this one."""


@dataclass(frozen=True)
class StoredGlossary:
    id: str
    name: str
    source_lang: str
    target_lang: str
    entry_count: int
    created_at: str  # RFC 3339, UTC
    created_by: str
    entries: tuple[tuple[str, str], ...] = ()  # only when asked for


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SqlStore:
    """The glossary tables over one DB-API connection; subclasses open it and say how to lock."""

    backend = ""
    errors: tuple[type[BaseException], ...] = ()  # what the driver raises when the database fails

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None

    # -- what a backend provides -------------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def _transaction(self, connection: Any, lock: int | None = None) -> contextlib.AbstractContextManager[Any]:
        """A transaction that holds the write lock for `lock` (a number naming what it serialises)."""
        raise NotImplementedError

    def _sql(self, query: str) -> str:
        return query

    def scrubbed(self, message: str) -> str:
        return message

    # -- the calls ---------------------------------------------------------------------------------
    def create(
        self, name: str, entries: Sequence[tuple[str, str]], created_by: str, most: int, pair: tuple[str, str]
    ) -> StoredGlossary:
        glossary = StoredGlossary(
            str(uuid.uuid4()), name, *pair, len(entries), now_rfc3339(), created_by, tuple(entries)
        )

        def write(connection: Any) -> None:
            with self._transaction(connection, lock=LOCK_CREATE) as cursor:
                cursor.execute(self._sql("SELECT count(*) FROM glossaries"))
                if cursor.fetchone()[0] >= most:
                    raise QuotaExceeded(
                        f"this server keeps at most {most} glossaries (--max-glossaries): delete one first"
                    )
                cursor.execute(
                    self._sql(
                        "INSERT INTO glossaries (id, name, source_lang, target_lang, entry_count, created_at, "
                        "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (glossary.id, name, *pair, len(entries), glossary.created_at, created_by),
                )
                cursor.executemany(
                    self._sql(
                        "INSERT INTO glossary_entries (glossary_id, position, source, target) VALUES (?, ?, ?, ?)"
                    ),
                    [(glossary.id, i, source, target) for i, (source, target) in enumerate(entries)],
                )

        self._run(write)
        return glossary

    def list(self) -> list[StoredGlossary]:
        def read(connection: Any) -> list[StoredGlossary]:
            with self._transaction(connection) as cursor:
                cursor.execute(self._sql(f"SELECT {COLUMNS} FROM glossaries ORDER BY created_at DESC, id"))
                return [glossary_of(row) for row in cursor.fetchall()]

        return self._run(read)

    def get(self, glossary_id: str, with_entries: bool) -> StoredGlossary | None:
        def read(connection: Any) -> StoredGlossary | None:
            with self._transaction(connection) as cursor:
                cursor.execute(self._sql(f"SELECT {COLUMNS} FROM glossaries WHERE id = ?"), (glossary_id,))
                row = cursor.fetchone()
                if row is None:
                    return None
                entries: tuple[tuple[str, str], ...] = ()
                if with_entries:
                    cursor.execute(
                        self._sql(
                            "SELECT source, target FROM glossary_entries WHERE glossary_id = ? ORDER BY position"
                        ),
                        (glossary_id,),
                    )
                    entries = tuple((source, target) for source, target in cursor.fetchall())
                return glossary_of(row, entries)

        return self._run(read)

    def delete(self, glossary_id: str) -> bool:
        def write(connection: Any) -> bool:
            with self._transaction(connection, lock=LOCK_CREATE) as cursor:
                cursor.execute(self._sql("DELETE FROM glossary_entries WHERE glossary_id = ?"), (glossary_id,))
                cursor.execute(self._sql("DELETE FROM glossaries WHERE id = ?"), (glossary_id,))
                return bool(cursor.rowcount)

        return self._run(write)

    def check(self) -> None:
        """Reach the database (and migrate it): raises what the driver raises when it cannot."""
        self._run(lambda connection: None)

    def close(self) -> None:
        with self._lock:
            self._drop()

    # -- the connection ----------------------------------------------------------------------------
    def _run(self, work: Callable[[Any], T]) -> T:
        with self._lock:
            if self._connection is None:
                connection = self._connect()
                try:
                    self._migrate(connection)
                except BaseException:
                    connection.close()
                    raise
                self._connection = connection
            try:
                return work(self._connection)
            except self.errors:
                self._drop()  # a failed connection is opened again on the next call
                raise

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def _migrate(self, connection: Any) -> None:
        with self._transaction(connection, lock=LOCK_MIGRATE) as cursor:
            cursor.execute(SCHEMA_TABLE)
            cursor.execute("SELECT version FROM tarjama_schema")
            applied = {row[0] for row in cursor.fetchall()}
            if applied and max(applied) > LATEST:
                raise SchemaTooNew(
                    f"the glossary database is at schema version {max(applied)}, newer than this Tarjama's "
                    f"{LATEST}: upgrade Tarjama, or give it another database"
                )
            for version, description, statements in MIGRATIONS:
                if version in applied:
                    continue
                for statement in statements:
                    cursor.execute(statement)
                cursor.execute(
                    self._sql("INSERT INTO tarjama_schema (version, description, applied_at) VALUES (?, ?, ?)"),
                    (version, description, now_rfc3339()),
                )


COLUMNS = "id, name, source_lang, target_lang, entry_count, created_at, created_by"


def glossary_of(row: Sequence[Any], entries: tuple[tuple[str, str], ...] = ()) -> StoredGlossary:
    """A row of COLUMNS as a StoredGlossary."""
    id, name, source_lang, target_lang, entry_count, created_at, created_by = row
    return StoredGlossary(id, name, source_lang, target_lang, int(entry_count), created_at, created_by, entries)


# Advisory lock numbers (PostgreSQL): what two replicas must not do at the same time.
LOCK_MIGRATE = 0x7A5A_0001
LOCK_CREATE = 0x7A5A_0002


class SqliteStore(SqlStore):
    """A file in --state-dir: nothing to set up; replicas on one machine may share it (WAL)."""

    backend = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; _transaction begins and commits them.
        connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it is acknowledged
            connection.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            connection.close()
            raise
        return connection

    @contextlib.contextmanager
    def _transaction(self, connection: Any, lock: int | None = None) -> Iterator[Any]:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if lock is not None else "BEGIN")
        try:
            yield cursor
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def check_url(url: str) -> str:
    """A --database-url that can never connect (it cannot be parsed, a port that is not a number, an
    unknown sslmode) stops the start with one line, rather than passing for a database that is down.
    The message never quotes the URL: it may hold a password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # psycopg's ProgrammingError quotes the URL: not passed on
        raise StartupError(
            "--database-url cannot be read as a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB)"
        ) from None
    ports = str(parts.get("port", "5432")).split(",")
    if not all(port.isdigit() and 0 < int(port) < 65536 for port in ports):
        raise StartupError("--database-url: the port must be a number from 1 to 65535")
    if str(parts.get("sslmode", "prefer")) not in SSL_MODES:
        raise StartupError(f"--database-url: sslmode must be one of {', '.join(SSL_MODES)}")
    return str(parts.get("password", ""))


class PostgresStore(SqlStore):
    """PostgreSQL (psycopg 3): one database that every replica given the same --database-url shares."""

    backend = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError:
            raise StartupError(
                "--database-url needs psycopg: pip install 'tarjama[postgres]' (or psycopg[binary])"
            ) from None
        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self._password = check_url(url)
        self._url = url  # holds the password: never logged, never shown

    def _connect(self) -> Any:
        return self._psycopg.connect(
            self._url,
            autocommit=True,  # _transaction opens each transaction
            connect_timeout=5,
            application_name="tarjama",
            # A statement or a lock wait past this fails (UNAVAILABLE) rather than holding the call.
            options="-c statement_timeout=10000 -c lock_timeout=5000",
        )

    @contextlib.contextmanager
    def _transaction(self, connection: Any, lock: int | None = None) -> Iterator[Any]:
        with connection.transaction(), connection.cursor() as cursor:
            if lock is not None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            yield cursor

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    def scrubbed(self, message: str) -> str:
        """A driver's message for the log, without the password should the driver quote it."""
        return message.replace(self._password, "***") if self._password else message
