"""Stored glossaries as the doors use them: checked, on the store's own thread, failures as UNAVAILABLE.

One `Glossaries` per server, over the store the flags choose (`open_store`). Every door (gRPC, the
DeepL-compatible routes, the reading page through the HTTP API) calls these methods, and a Translate
with `options.glossary_id` gets its entries from `terms()`. A database that fails or does not answer
within CALL_TIMEOUT_S gives StoreUnavailable for glossary calls only: translation without a stored
glossary never touches the database.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import InvalidRequest, NotFound, StoreUnavailable
from ..offload import text_work
from ..settings import Settings
from ..text.glossary_entries import InvalidEntries, checked_entries, has_control
from .store import PostgresStore, SchemaTooNew, SqliteStore, SqlStore, StoredGlossary

log = logging.getLogger(__name__)
T = TypeVar("T")

PAIR = ("ar", "en")  # the one pair this server translates
MAX_NAME_CHARACTERS = 200
MAX_ID_CHARACTERS = 64  # a UUID is 36; anything longer is not one of ours
# A name is shown to every editor: embeddings, overrides and isolates could make it read as another.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
CALL_TIMEOUT_S = 15.0  # past PostgreSQL's own connect (5 s) and statement (10 s) timeouts
INLINE_ENTRIES = 16  # a glossary this small is checked and written out on the event loop
CACHED_ENTRIES = 200_000  # entries kept in memory over all glossaries (a glossary's entries never change)


def open_store(settings: Settings) -> SqlStore:
    """The store the flags choose; nothing is opened yet (the first call connects)."""
    if settings.database_url:
        return PostgresStore(settings.database_url)
    return SqliteStore(settings.resolved_state_dir() / "glossaries.sqlite3")


class Glossaries:
    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        # One thread: the store serialises its calls anyway, and a hung database then holds one thread.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tarjama-glossaries")
        self._entries: collections.OrderedDict[str, dict[str, str]] = collections.OrderedDict()
        self._cached = 0

    @property
    def backend(self) -> str:
        return self.store.backend

    async def create(
        self, name: str, entries: list[tuple[str, str]], pair: tuple[str, str], created_by: str
    ) -> StoredGlossary:
        name = name.strip()
        if not name:
            raise InvalidRequest("name: a glossary needs a name")
        if len(name) > MAX_NAME_CHARACTERS or has_control(name) or any(c in BIDI_CONTROLS for c in name):
            raise InvalidRequest(
                f"name: at most {MAX_NAME_CHARACTERS} characters, without control characters, line separators "
                "or bidirectional overrides"
            )
        check_pair(*pair)
        if not entries:
            raise InvalidRequest("entries: a glossary needs at least one entry")
        # 10,000 entries take tens of milliseconds to check: off the event loop, which answers health.
        small = len(entries) <= INLINE_ENTRIES
        limits = (self.settings.max_glossary_terms, self.settings.max_term_characters)
        try:
            terms = await text_work(small, checked_entries, entries, len(entries), limits, "entries", True)
        except InvalidEntries as exc:
            raise InvalidRequest(str(exc)) from None
        most = self.settings.max_glossaries
        return await self._call(lambda: self.store.create(name, list(terms.items()), created_by, most, PAIR))

    async def check(self) -> None:
        """Reach the database (migrating it on first contact); StoreUnavailable when it cannot."""
        await self._call(self.store.check)

    async def list(self) -> list[StoredGlossary]:
        return await self._call(self.store.list)

    async def get(self, glossary_id: str, with_entries: bool = False) -> StoredGlossary:
        check_id(glossary_id)
        found = await self._call(lambda: self.store.get(glossary_id, with_entries))
        if found is None:
            raise NotFound(f"no glossary has the id {glossary_id!r} (ListGlossaries lists them)")
        return found

    async def delete(self, glossary_id: str) -> None:
        check_id(glossary_id)
        if not await self._call(lambda: self.store.delete(glossary_id)):
            raise NotFound(f"no glossary has the id {glossary_id!r} (ListGlossaries lists them)")
        self._forget(glossary_id)

    async def terms(self, glossary_id: str) -> dict[str, str]:
        """The entries of a stored glossary for a Translate: {term: rendering}. One small query per call
        (so a deletion on any replica is seen at once); the entries themselves are read once and kept,
        since a glossary's entries never change."""
        cached = self._entries.get(glossary_id)
        if cached is not None:
            await self.get(glossary_id)  # still there?
            self._entries.move_to_end(glossary_id)
            return cached
        glossary = await self.get(glossary_id, with_entries=True)
        terms = dict(glossary.entries)
        self._keep(glossary_id, terms)
        return terms

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        try:
            self.store.close()
        except Exception:  # closing a broken connection: nothing to do
            log.debug("closing the glossary store failed", exc_info=True)

    async def _call(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        failures: tuple[type[BaseException], ...] = (*self.store.errors, OSError)
        try:
            future = loop.run_in_executor(self._thread, work)
            return await asyncio.wait_for(future, CALL_TIMEOUT_S)
        except (TimeoutError, asyncio.TimeoutError):
            log.error("the glossary database did not answer within %g s", CALL_TIMEOUT_S)
            raise StoreUnavailable(unavailable(self.backend)) from None
        except RuntimeError as exc:  # the thread pool is shut down: the server is stopping
            if "shutdown" not in str(exc):
                raise
            raise StoreUnavailable(unavailable(self.backend)) from None
        except SchemaTooNew as exc:
            log.error("%s", exc)
            raise StoreUnavailable(unavailable(self.backend)) from None
        except failures as exc:
            # The driver's message names the host and the failure (never the password): for the log only.
            detail = self.store.scrubbed(" ".join(str(exc).split()))[:300]  # one line: libpq's span several
            log.error("the glossary database failed: %s: %s", type(exc).__name__, detail)
            raise StoreUnavailable(unavailable(self.backend)) from None

    def _keep(self, glossary_id: str, terms: dict[str, str]) -> None:
        self._forget(glossary_id)
        self._entries[glossary_id] = terms
        self._cached += len(terms)
        while self._cached > CACHED_ENTRIES and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._cached -= len(dropped)

    def _forget(self, glossary_id: str) -> None:
        dropped = self._entries.pop(glossary_id, None)
        if dropped is not None:
            self._cached -= len(dropped)


def unavailable(backend: str) -> str:
    return f"the glossary database ({backend}) is unavailable; translation without glossaries still works"


def check_id(glossary_id: str) -> None:
    if not glossary_id:
        raise InvalidRequest("glossary_id is empty")
    if len(glossary_id) > MAX_ID_CHARACTERS:
        raise InvalidRequest(f"glossary_id has {len(glossary_id)} characters; ids have at most {MAX_ID_CHARACTERS}")


def check_pair(source: str, target: str) -> None:
    """A glossary for the pair this server has: empty, or ar and en (any case, EN-GB and EN-US too)."""
    source, target = source.strip().lower(), target.strip().lower()
    if source not in ("", "ar") or target.split("-")[0] not in ("", "en"):
        raise InvalidRequest(
            f"this server translates Arabic to English only: a glossary from {source[:10]!r} to {target[:10]!r} "
            "cannot be used (source_lang ar, target_lang en)"
        )
