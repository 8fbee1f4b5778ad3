"""Stored glossaries: the store on SQLite and on a real PostgreSQL, and the feature through gRPC and the CLI.

The PostgreSQL cases run on the server `postgres_url` gives (conftest: the one `.ci/run` starts, or a
throw-away one from the machine's PostgreSQL binaries).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tarjama.client import InvalidArgument, NotFound, PermissionDenied, TarjamaClient, Unauthenticated, Unavailable
from tarjama.server.errors import InvalidRequest, QuotaExceeded, StoreUnavailable
from tarjama.server.errors import NotFound as Missing
from tarjama.server.glossaries import Glossaries, open_store
from tarjama.server.glossaries.migrations import LATEST
from tarjama.server.settings import Settings
from tarjama.v1 import tarjama_pb2 as pb

from conftest import free_port, run_cli, serving_http

WRITER = "writer-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
NAMES = [("مارتيلي", "Michel Martelly"), ("بورت أو برنس", "Port-au-Prince")]


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings whose store is a fresh SQLite file, or a fresh database on the test PostgreSQL."""
    if request.param == "sqlite":
        return Settings(state_dir=str(tmp_path / "state"))
    return Settings(database_url=request.getfixturevalue("postgres_database"))


def glossaries(settings: Settings) -> Glossaries:
    return Glossaries(open_store(settings), settings)


# -- the store ----------------------------------------------------------------------------------------


def test_a_glossary_is_stored_listed_read_and_deleted(settings: Settings) -> None:
    store = glossaries(settings)

    async def scenario() -> None:
        first = await store.create("Haiti desk", NAMES, ("AR", "EN-GB"), "desk")
        second = await store.create("Haiti desk", [("هايتي", "Haiti")], ("", ""), "")
        assert (first.source_lang, first.target_lang, first.entry_count) == ("ar", "en", 2)
        assert len(first.id) == 36 and first.created_at.endswith("Z") and first.created_by == "desk"
        listed = await store.list()
        assert [g.id for g in listed] == [second.id, first.id]  # newest first; names need not be unique
        assert all(g.entries == () for g in listed)
        read = await store.get(first.id, with_entries=True)
        assert read.entries == tuple(NAMES) and read.name == "Haiti desk"  # in the order given
        assert await store.terms(first.id) == dict(NAMES)
        await store.delete(first.id)
        with pytest.raises(Missing, match="no glossary has the id"):
            await store.get(first.id)
        with pytest.raises(Missing, match="no glossary has the id"):
            await store.delete(first.id)
        assert [g.id for g in await store.list()] == [second.id]

    run(scenario())
    store.close()


def test_an_acknowledged_glossary_is_in_the_database_for_a_new_process(settings: Settings) -> None:
    """Durable before acknowledged: a store opened afresh (another process, after a restart) reads it;
    SQLite commits with synchronous=FULL, PostgreSQL commits before the call returns."""
    writer = glossaries(settings)
    created = run(writer.create("names", NAMES, ("ar", "en"), "desk"))
    reader = glossaries(settings)  # a new connection, as another replica or a restarted server has
    assert run(reader.terms(created.id)) == dict(NAMES)
    if settings.database_url == "":
        connection = writer.store._connection  # type: ignore[attr-defined]
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.close()
    reader.close()


def test_the_schema_is_versioned_and_migrated_once(settings: Settings) -> None:
    first = glossaries(settings)
    run(first.check())
    second = glossaries(settings)  # a second server on the same database applies nothing again
    run(second.check())

    def versions(connection) -> list[int]:  # noqa: ANN001
        cursor = connection.cursor()
        cursor.execute("SELECT version FROM tarjama_schema ORDER BY version")
        return [row[0] for row in cursor.fetchall()]

    assert versions(second.store._connection) == list(range(1, LATEST + 1))  # type: ignore[attr-defined]
    first.close()
    second.close()


def test_a_database_from_a_newer_tarjama_is_refused_not_written(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    settings = Settings(state_dir=str(tmp_path))
    run(glossaries(settings).check())
    with sqlite3.connect(tmp_path / "glossaries.sqlite3") as connection:
        connection.execute("INSERT INTO tarjama_schema VALUES (99, 'from the future', '2030-01-01T00:00:00Z')")
    store = glossaries(settings)
    with pytest.raises(StoreUnavailable, match="unavailable; translation without glossaries still works"):
        run(store.list())
    assert "schema version 99, newer than this Tarjama's" in caplog.text


def test_two_replicas_on_one_postgresql_see_each_others_changes_at_once(postgres_database: str) -> None:
    """Every call reads the database (a glossary's entries are cached, but whether it still exists is
    asked each time), so a change on one replica is seen on the next call of the other."""
    settings = Settings(database_url=postgres_database)
    one, other = glossaries(settings), glossaries(settings)
    created = run(one.create("names", NAMES, ("ar", "en"), "desk"))
    assert run(other.terms(created.id)) == dict(NAMES)  # the other replica, at once
    run(one.delete(created.id))
    with pytest.raises(Missing, match="no glossary has the id"):
        run(other.terms(created.id))  # its cached entries are not used for a deleted glossary


def test_replicas_on_one_machine_may_share_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path))
    one, other = glossaries(settings), glossaries(settings)
    created = run(one.create("names", NAMES, ("ar", "en"), "desk"))
    assert run(other.terms(created.id)) == dict(NAMES)
    run(other.delete(created.id))
    with pytest.raises(Missing, match="no glossary has the id"):
        run(one.terms(created.id))


def test_entries_are_checked_as_a_requests_own_terms_are(tmp_path: Path) -> None:
    settings = Settings(state_dir=str(tmp_path), max_glossary_terms=3, max_term_characters=20)
    store = glossaries(settings)
    for name, entries, problem in [
        ("", NAMES, "needs a name"),
        ("x" * 201, NAMES, "at most 200 characters"),
        ("a\nb", NAMES, "without control characters"),
        ("n", [], "at least one entry"),
        ("n", [("أ", "a"), ("ب", "b"), ("ت", "t"), ("ث", "th")], "has 4 entries; this server accepts at most 3"),
        ("n", [("مارتيلي", " ")], "has an empty side"),
        ("n", [("مارتيلي", "x" * 21)], "over 20 characters"),
        ("n", [("مارتيلي", "Michel\tMartelly")], "control character"),
        ("n", [("مارتيلي", "a"), (" مارتيلي ", "b")], "given twice"),
        ("n", [("\u064e\u064f", "x")], "only tatweel or diacritics"),  # a term no request could match
    ]:
        with pytest.raises(InvalidRequest, match=problem):
            run(store.create(name, entries, ("ar", "en"), ""))
    with pytest.raises(InvalidRequest, match="Arabic to English only"):
        run(store.create("n", NAMES[:1], ("ar", "fr"), ""))
    with pytest.raises(InvalidRequest, match="glossary_id has 65 characters"):
        run(store.get("x" * 65))
    assert run(store.list()) == []  # nothing was half-written


def test_at_most_max_glossaries_are_kept(settings: Settings) -> None:
    store = glossaries(replace(settings, max_glossaries=2))
    for i in range(2):
        run(store.create(f"g{i}", NAMES, ("ar", "en"), ""))
    with pytest.raises(QuotaExceeded, match="at most 2 glossaries"):
        run(store.create("g2", NAMES, ("ar", "en"), ""))
    run(store.delete(run(store.list())[0].id))
    run(store.create("g2", NAMES, ("ar", "en"), ""))  # room again


def test_a_database_that_does_not_answer_is_unavailable_in_bounded_time(tmp_path: Path) -> None:
    dead = Settings(database_url=f"postgresql://tarjama:secret-password@127.0.0.1:{free_port()}/none")
    store = glossaries(dead)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as refused:
        run(store.list())
    assert time.monotonic() - started < 10
    assert "secret-password" not in str(refused.value)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the state directory should be")
    with pytest.raises(StoreUnavailable):
        run(glossaries(Settings(state_dir=str(blocked))).list())


# -- through the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glossary_server(fixture_models, cache_dir, tmp_path_factory) -> Iterator:  # noqa: ANN001
    state = tmp_path_factory.mktemp("glossary-state")
    reader = f"reader:{READER}\n"
    with serving_http(
        fixture_models, cache_dir, "--state-dir", str(state), token=WRITER, token_name="desk", more_tokens=reader
    ) as process:
        yield process


def test_a_stored_glossary_is_applied_by_id_and_a_requests_own_terms_win(glossary_server, memorised_pairs) -> None:
    source, english = memorised_pairs[0]
    word = max(source.split(), key=len)  # an Arabic word of the sentence
    with TarjamaClient(glossary_server.address, token=WRITER, timeout=60) as client:
        created = client.create_glossary("desk names", {word: "Stored Rendering", "هايتي": "Haiti"})
        assert created.entry_count == 2 and created.created_by == "desk"
        assert [e.source for e in created.entries] == [word, "هايتي"]
        assert created.glossary_id in [g.glossary_id for g in client.list_glossaries()]

        stored = client.translate(source, glossary_id=created.glossary_id)
        assert "Stored Rendering" in stored.paragraphs[0].translation
        assert [(t.source, t.target, t.occurrences) for t in stored.terms] == [
            (word, "Stored Rendering", 1),
            ("هايتي", "Haiti", 0),
        ]
        own = client.translate(source, glossary_id=created.glossary_id, terms={word: "Own Rendering"})
        assert "Own Rendering" in own.paragraphs[0].translation
        assert "Stored Rendering" not in own.paragraphs[0].translation
        assert {t.source: t.target for t in own.terms}[word] == "Own Rendering"
        streamed = list(client.translate_stream(source, glossary_id=created.glossary_id))
        assert "Stored Rendering" in streamed[0].paragraphs[0].translation

        plain = client.translate(source)
        assert plain.paragraphs[0].translation == english and not plain.terms

        read = client.get_glossary(created.glossary_id)
        assert [(e.source, e.target) for e in read.entries] == [(word, "Stored Rendering"), ("هايتي", "Haiti")]
        assert client.get_glossary(created.glossary_id, entries=False).entries == []
        client.delete_glossary(created.glossary_id)
        with pytest.raises(NotFound, match="no glossary has the id"):
            client.translate(source, glossary_id=created.glossary_id)
        with pytest.raises(NotFound):
            client.delete_glossary(created.glossary_id)


def test_writing_needs_the_glossaries_right_and_reading_any_token(glossary_server) -> None:
    with TarjamaClient(glossary_server.address, token=READER, timeout=30) as reader:
        with pytest.raises(PermissionDenied, match="needs a token with the 'glossaries' right"):
            reader.create_glossary("names", dict(NAMES))
        with TarjamaClient(glossary_server.address, token=WRITER, timeout=30) as writer:
            created = writer.create_glossary("names", dict(NAMES))
        assert reader.get_glossary(created.glossary_id).entry_count == 2
        with pytest.raises(PermissionDenied):
            reader.delete_glossary(created.glossary_id)
    with TarjamaClient(glossary_server.address, timeout=30) as nobody:
        with pytest.raises(Unauthenticated):
            nobody.list_glossaries()


def test_bad_glossary_requests_get_precise_errors(glossary_server, memorised_pairs) -> None:
    with TarjamaClient(glossary_server.address, token=WRITER, timeout=30) as client:
        with pytest.raises(NotFound, match="no glossary has the id 'no-such-id'"):
            client.translate(memorised_pairs[0][0], glossary_id="no-such-id")
        with pytest.raises(InvalidArgument, match="glossary_id has 100 characters"):
            client.get_glossary("g" * 100)
        with pytest.raises(InvalidArgument, match="given twice"):
            client.create_glossary("dup", [("هايتي", "Haiti"), ("هايتي", "Hayti")])
        with pytest.raises(InvalidArgument, match="Arabic to English only"):
            client._call(  # the client always sends ar/en; another tool may not
                client._stub.CreateGlossary,
                pb.CreateGlossaryRequest(
                    name="fr", entries=[pb.GlossaryEntry(source="هايتي", target="Haïti")], target_lang="FR"
                ),
                None,
            )
        limits = client.info().limits
        assert (limits.max_glossaries, limits.max_glossary_name_characters) == (1000, 200)


def test_the_cli_creates_lists_shows_applies_and_deletes_a_glossary(glossary_server, memorised_pairs, tmp_path) -> None:  # noqa: ANN001
    source, _ = memorised_pairs[1]
    word = max(source.split(), key=len)
    entries = tmp_path / "names.tsv"
    entries.write_text(f"{word}\tCLI Rendering\nهايتي\tHaiti\n", encoding="utf-8")
    article = tmp_path / "a.txt"
    article.write_text(source, encoding="utf-8")
    base = ["--server", glossary_server.address, "--token", WRITER]

    created = run_cli("glossary", "create", "cli names", str(entries), *base)
    assert created.returncode == 0, created.stderr
    glossary_id = created.stdout.split("\t")[0]
    listed = run_cli("glossary", "list", "--format", "json", *base)
    assert glossary_id in [g["glossary_id"] for g in json.loads(listed.stdout)]
    shown = run_cli("glossary", "show", "cli names", *base)
    assert shown.stdout == f"{word}\tCLI Rendering\nهايتي\tHaiti\n"
    translated = run_cli("translate", "--no-summary", "--glossary", "cli names", str(article), *base)
    assert translated.returncode == 0, translated.stderr
    assert "CLI Rendering" in translated.stdout
    missing = run_cli("translate", "--glossary", "no such glossary", str(article), *base)
    assert missing.returncode == 1 and "NOT_FOUND: no glossary is named 'no such glossary'" in missing.stderr
    broken = tmp_path / "broken.tsv"
    broken.write_text("هايتي\tHaiti\nonly one column\n", encoding="utf-8")
    refused = run_cli("glossary", "create", "broken", str(broken), *base)
    assert refused.returncode == 1 and "line 2: expected a term and its rendering separated by a tab" in refused.stderr
    assert run_cli("glossary", "delete", glossary_id, *base).returncode == 0
    assert glossary_id not in run_cli("glossary", "list", *base).stdout


def test_a_server_whose_database_is_down_translates_and_says_so_for_glossaries(
    fixture_models,
    cache_dir,
    memorised_pairs,  # noqa: ANN001
) -> None:
    url = f"postgresql://tarjama:secret-password@127.0.0.1:{free_port()}/tarjama"
    with serving_http(fixture_models, cache_dir, "--database-url", url) as process:
        with TarjamaClient(process.address, timeout=60) as client:
            source, english = memorised_pairs[0]
            assert client.translate(source).paragraphs[0].translation == english
            started = time.monotonic()
            with pytest.raises(Unavailable, match="glossary database \\(postgresql\\) is unavailable"):
                client.list_glossaries()
            with pytest.raises(Unavailable, match="glossary database"):
                client.translate(source, glossary_id="0" * 36)
            assert time.monotonic() - started < 30
            assert client.health() == "SERVING"
        assert "secret-password" not in process.log()
        assert "does not answer" in process.log()


def test_two_servers_on_one_postgresql_share_the_newsrooms_glossaries(
    fixture_models,
    cache_dir,
    memorised_pairs,
    postgres_database,  # noqa: ANN001
) -> None:
    source, _ = memorised_pairs[2]
    word = max(source.split(), key=len)
    with (
        serving_http(fixture_models, cache_dir, "--database-url", postgres_database) as one,
        serving_http(fixture_models, cache_dir, "--database-url", postgres_database) as other,
    ):
        with TarjamaClient(one.address, timeout=60) as first, TarjamaClient(other.address, timeout=60) as second:
            created = first.create_glossary("shared", {word: "Shared Rendering"})
            # The other replica sees it on its next call: no polling interval, every call reads the database.
            assert [g.glossary_id for g in second.list_glossaries()] == [created.glossary_id]
            assert (
                "Shared Rendering"
                in second.translate(source, glossary_id=created.glossary_id).paragraphs[0].translation
            )
            first.delete_glossary(created.glossary_id)
            with pytest.raises(NotFound):
                second.translate(source, glossary_id=created.glossary_id)


def test_a_glossary_at_the_limits_is_stored_and_read_while_health_answers(glossary_server, memorised_pairs) -> None:
    """10,000 entries (--max-glossary-terms) in a message just under --max-message-bytes (3.8 MB):
    checked, stored and read back with health polled throughout within the bound (the checks and the
    messages are made off the event loop, the database calls on the store's thread); then applied.

    Its first use builds the matcher of 10,000 terms of 100 letters (60,000 keys with the clitic
    forms), which holds the interpreter ~2 s inside ahocorasick_rs (as the same terms sent in
    options.terms do: found here); that is not under the bound. The compiled matcher is then kept, so
    the next translation with it is."""
    from conftest import HealthMonitor

    source, _ = memorised_pairs[0]
    entries = {f"مصطلح{i:05d}" + "ب" * 90: f"Term {i:05d} " + "x" * 160 for i in range(10_000)}
    with TarjamaClient(glossary_server.address, token=WRITER, timeout=120) as client:
        with HealthMonitor(glossary_server.address) as health:
            created = client.create_glossary("at the limits", entries)
            read = client.get_glossary(created.glossary_id)
            listed = client.list_glossaries()
        health.check("a 10,000-entry glossary created, read and listed")
        assert created.entry_count == 10_000 and len(read.entries) == 10_000
        assert read.entries[9_999].source == f"مصطلح{9_999:05d}" + "ب" * 90
        assert created.glossary_id in [g.glossary_id for g in listed]
        first = client.translate(source, glossary_id=created.glossary_id)
        with HealthMonitor(glossary_server.address) as health:
            again = client.translate(source, glossary_id=created.glossary_id)
        health.check("a translation with a 10,000-entry stored glossary, compiled before")
        assert len(first.terms) == len(again.terms) == 10_000
        assert again.paragraphs[0].translation == first.paragraphs[0].translation
        with pytest.raises(InvalidArgument, match="has 10001 entries; this server accepts at most 10000"):
            client.create_glossary("over", {**entries, "زائد": "extra"})
        client.delete_glossary(created.glossary_id)


def test_a_large_glossary_is_compiled_once_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from tarjama.server.text import rules

    monkeypatch.setattr(rules, "COMPILED_CHARACTERS", 20_000)

    big = {f"اسم{i}": f"Name {i}" for i in range(1_000)}
    compiled = rules.glossary_for(big)
    assert rules.glossary_for(dict(big)) is compiled  # equal terms: the same matcher
    assert rules.glossary_for(big, strip_diacritics=True) is not compiled  # normalised another way
    assert rules.glossary_for({**big, "اسم": "Name"}) is not compiled
    small = {"مارتيلي": "Michel Martelly"}
    assert rules.glossary_for(small) is not rules.glossary_for(small)  # too small to be worth keeping
    huge = {f"مصطلح{i:05d}" + "ب" * 90: "x" for i in range(201)}  # over COMPILED_CHARACTERS alone
    assert rules.glossary_for(huge) is not rules.glossary_for(huge)
    others = [{f"كلمة{j}-{i}": "w" for i in range(1_000)} for j in range(3)]  # 9,000+ characters each
    for terms in others:
        rules.glossary_for(terms)
    assert rules._cached_characters <= 20_000
    assert rules.glossary_for(others[-1]) is rules.glossary_for(others[-1])  # the newest are kept


def test_a_database_url_that_can_never_connect_stops_the_start_without_quoting_it(fixture_models, cache_dir) -> None:  # noqa: ANN001
    base = ["serve", "--port", "0", "--translation-model", str(fixture_models["memorised"]), "--summary-model",
            "extractive", "--cache-dir", str(cache_dir)]  # fmt: skip
    for url, says in [
        ("postgresql://tarjama:my%zzSECRET@127.0.0.1:5432/t", "cannot be read as a PostgreSQL URL"),
        ("postgresql://tarjama:SECRET@[::1/t", "cannot be read as a PostgreSQL URL"),
        ("postgresql://tarjama:SECRET@127.0.0.1:notaport/t", "the port must be a number"),
        ("postgresql://tarjama:SECRET@127.0.0.1/t?sslmode=bogus", "sslmode must be one of"),
    ]:
        done = run_cli(*base, "--database-url", url, timeout=60)
        assert done.returncode == 1 and says in done.stderr, (url, done.stderr[-500:])
        assert "SECRET" not in done.stdout + done.stderr
