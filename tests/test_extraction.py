"""--extract: the article of a page saved from a news site, and what was dropped, said."""

from __future__ import annotations

import pytest

from conftest import article, needs, run_cli, saved_page

needs("trafilatura", "server")

from tarjama.server.markup.extraction import extract_article  # noqa: E402


def test_the_article_is_kept_and_the_furniture_dropped_and_listed(memorised_pairs) -> None:
    body = [memorised_pairs[i][0] for i in range(6)]
    found = extract_article(saved_page(body))
    assert found.title == body[0] and found.author == "أحمد علي" and found.date == "2024-03-12"
    assert found.paragraphs == [body[0], "أحمد علي", "2024-03-12", *body[1:]]
    for furniture in ("+ الخط -", "شارك على فيسبوك تويتر واتساب", "خبر آخر عن الاقتصاد", "جميع الحقوق محفوظة © 2024"):
        assert furniture in found.dropped
    assert not any("tracking" in block or "لا تترجم" in block for block in found.dropped + found.paragraphs)


def test_the_cli_translates_the_article_of_a_saved_page(hardened_server, memorised_pairs, tmp_path) -> None:
    arabic, english = article(memorised_pairs, [1] * 6)
    page = tmp_path / "story.html"
    page.write_text(saved_page(arabic), encoding="utf-8")
    done = run_cli("translate", str(page), "--extract", "--no-summary", "--server", hardened_server.address)
    assert done.returncode == 0, done.stderr
    paragraphs = done.stdout.rstrip("\n").split("\n\n")
    assert paragraphs[0] == english[0] and paragraphs[3:] == english[1:], "headline, byline, date, then the body"
    assert "kept the article (headline, byline, date); dropped 9 blocks" in done.stderr
    assert "'+ الخط -'" in done.stderr
    as_markup = run_cli("translate", str(page), "--no-summary", "--server", hardened_server.address)
    assert as_markup.returncode == 0 and as_markup.stdout.lstrip().lower().startswith("<!doctype html>"), (
        "without --extract an .html file is translated as HTML"
    )


def test_translate_keeps_the_article_of_a_page_and_says_what_was_dropped(hardened_server, memorised_pairs) -> None:
    import grpc

    from tarjama.client import TarjamaClient, TarjamaError

    arabic, english = article(memorised_pairs, [1] * 4)
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        response = client.translate(html=saved_page(arabic), extract_article=True)
        streamed = list(client.translate_stream(html=saved_page(arabic), extract_article=True))
        with pytest.raises(TarjamaError) as without_html:
            client.translate("نص", extract_article=True)
    assert [p.source for p in response.paragraphs] == [arabic[0], "أحمد علي", "2024-03-12", *arabic[1:]]
    assert [p.translation for p in response.paragraphs][3:] == english[1:] and not response.html
    extraction = response.extraction
    assert (extraction.title, extraction.author, extraction.date) == (arabic[0], "أحمد علي", "2024-03-12")
    assert "+ الخط -" in extraction.dropped and "خبر عن الطقس" in extraction.dropped
    assert streamed[-1].extraction == extraction
    assert (
        without_html.value.code == grpc.StatusCode.INVALID_ARGUMENT and "needs the page" in without_html.value.message
    )
