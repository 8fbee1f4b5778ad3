"""The translation cache: repeated sentences skip the model, and results stay exact."""

from __future__ import annotations

from dataclasses import replace

from tarjama.client import TarjamaClient
from tarjama.server.cache import LRUCache

from conftest import InProcessServer, article


def test_lru_forgets_the_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert (cache.hits, cache.misses) == (3, 1)


def test_size_zero_is_off() -> None:
    cache: LRUCache[str, int] = LRUCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0


def test_repeated_sentences_are_served_from_the_cache(fixture_models, base_settings, memorised_pairs):
    server = InProcessServer(replace(base_settings, translation_model=str(fixture_models["memorised"]), cache_size=100))
    server.wait_serving()
    try:
        arabic, english = article(memorised_pairs, [2, 1])
        with TarjamaClient(server.address) as client:
            first = client.translate(paragraphs=arabic)
            second = client.translate(paragraphs=arabic + [memorised_pairs[5][0]])
            stats = client.info().stats
        assert first.info.cached_sentences == 0
        assert second.info.cached_sentences == 3 and second.info.sentences == 4
        assert [p.translation for p in second.paragraphs] == english + [memorised_pairs[5][1]]
        assert stats.cache_hits == 3 and stats.batched_sentences == 4
    finally:
        server.stop()
