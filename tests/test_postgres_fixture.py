"""The PostgreSQL fixtures give a real server (the stored glossaries' PostgreSQL tests rely on them): a
database per test that two connections share, as two replicas do, and that is gone after the test."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

psycopg = pytest.importorskip("psycopg")

# The databases earlier tests of this module were given, for the last test to look for.
GIVEN: list[str] = []


def test_a_write_is_read_back_from_a_second_connection(postgres_database: str) -> None:
    GIVEN.append(urlsplit(postgres_database).path.lstrip("/"))
    with psycopg.connect(postgres_database, connect_timeout=10) as writer:
        writer.execute("CREATE TABLE glossary (term text PRIMARY KEY, rendering text NOT NULL)")
        writer.execute("INSERT INTO glossary VALUES (%s, %s)", ("غزة", "Gaza"))
        writer.commit()
        with psycopg.connect(postgres_database, connect_timeout=10) as reader:
            row = reader.execute("SELECT rendering FROM glossary WHERE term = %s", ("غزة",)).fetchone()
            assert row == ("Gaza",)
            server = reader.execute("SHOW server_version_num").fetchone()
            assert server is not None and int(server[0]) >= 130000  # DROP DATABASE ... WITH (FORCE)
        # Over TCP on loopback, with a password: what --database-url gives a replica.
        parts = urlsplit(postgres_database)
        assert parts.hostname == "127.0.0.1" and parts.password
        assert writer.info.host == "127.0.0.1"


def test_each_test_gets_its_own_empty_database(postgres_url: str, postgres_database: str) -> None:
    assert postgres_database != postgres_url
    with psycopg.connect(postgres_database, connect_timeout=10) as connection:
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)  # the previous test's table is not here


def test_the_database_is_dropped_after_its_test(postgres_url: str) -> None:
    if not GIVEN:
        pytest.skip("run with the first test of this module: it names the database to look for")
    with psycopg.connect(postgres_url, connect_timeout=10) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (GIVEN,)).fetchall()
        assert left == []
        # ... and its server is still there for the next test.
        assert connection.execute("SELECT 1").fetchone() == (1,)
