"""HTML in, HTML out: a CMS article round-trips with its markup, links and untouched content, every block
translated, each paragraph with its locator."""

from __future__ import annotations

import re

import grpc
import lxml.html
import pytest

from tarjama.client import TarjamaClient, TarjamaError
from tarjama.server.html_doc import parse_html
from tarjama.v1 import tarjama_pb2 as pb

from conftest import run_cli

SCRIPT = 'if (a < b && c) { document.title = "لا تترجم"; }'
STYLE = "p::before { content: 'نص'; }"
CODE = "for x in range(3):\n    print(x < 2)"


def cms_article(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """A CMS body with headings, inline markup, a link, a figure, code, a script, a comment and
    translate="no" content; and the English each translated block must read."""
    (a0, e0), (a1, e1), (a2, e2), (a3, e3), (a4, e4) = pairs[:5]
    first, rest = a1.split(" ", 1)
    before, linked, after = a2.split(" ", 2)
    html = f"""<article>
<h1>{a0}</h1>
<p class="lead"><strong>{first}</strong> {rest}</p>
<!-- التحرير: راجع هذا -->
<p>{before} <a href="https://example.com/a?b=1&amp;c=2" data-id="7">{linked}</a> {after}</p>
<figure><img src="/img/photo.jpg" alt="{a3}"><figcaption>{a4}</figcaption></figure>
<pre>{CODE}</pre>
<p translate="no">نص لا يترجم <em>أبدا</em></p>
<p class="byline notranslate">بقلم محرر</p>
<script>{SCRIPT}</script><style>{STYLE}</style>
<time datetime="2024-03-12T10:00">Reuters</time>
</article>"""
    return html, {"h1": e0, "lead": e1, "link": e2, "alt": e3, "caption": e4}


def tags(root: lxml.html.HtmlElement) -> list[str]:
    return [e.tag for e in root.iter() if isinstance(e.tag, str)]


def fragment(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fragment_fromstring(html, create_parent="div")


def words(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def test_blocks_runs_and_untouched_content_are_found(memorised_pairs) -> None:
    html, _ = cms_article(memorised_pairs)
    document = parse_html(html)
    locators = document.locators
    assert locators == [
        "article:nth-of-type(1) > h1:nth-of-type(1)",
        "article:nth-of-type(1) > p:nth-of-type(1)",
        "article:nth-of-type(1) > p:nth-of-type(2)",
        "article:nth-of-type(1) > figure:nth-of-type(1) > figcaption:nth-of-type(1)",
        "article:nth-of-type(1) > figure:nth-of-type(1) > img:nth-of-type(1)@alt",
    ]
    assert document.paragraphs[1] == memorised_pairs[1][0], "inline markup is not in the text the model sees"
    assert not any("لا يترجم" in p or "محرر" in p or "تترجم" in p for p in document.paragraphs)


def test_a_cms_article_round_trips_with_its_markup(hardened_server, memorised_pairs) -> None:
    html, english = cms_article(memorised_pairs)
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        response = client.translate(html=html, id="cms-42")
    out = fragment(response.html)
    source = fragment(html)
    assert tags(out) == tags(source), "the same element structure"
    link, image, when = out.find(".//a"), out.find(".//img"), out.find(".//time")
    assert link.get("href") == "https://example.com/a?b=1&c=2" and link.get("data-id") == "7"
    assert image.get("src") == "/img/photo.jpg" and when.get("datetime") == "2024-03-12T10:00"
    assert image.get("alt") == english["alt"]
    assert words(out.find(".//h1")) == english["h1"]
    lead = out.find(".//p")
    assert words(lead) == english["lead"] and lead.find("strong") is not None and lead.find("strong").text
    assert words(out.findall(".//p")[1]) == english["link"] and link.text, "the link wraps English words"
    assert words(out.find(".//figcaption")) == english["caption"]
    # Untouched, character for character.
    assert out.find(".//pre").text == CODE and out.find(".//script").text == SCRIPT
    assert out.find(".//style").text == STYLE
    assert words(out.findall(".//p")[2]) == "نص لا يترجم أبدا" and words(out.findall(".//p")[3]) == "بقلم محرر"
    assert "<!-- التحرير: راجع هذا -->" in response.html
    # The paragraphs: what the model saw, with offsets and the block's locator.
    assert [p.locator for p in response.paragraphs] == parse_html(html).locators
    for paragraph in response.paragraphs:
        for s in paragraph.sentences:
            assert paragraph.source[s.source_start : s.source_end] == s.source
    assert response.id == "cms-42"
    # Markup around Arabic words is placed by position, and the sentence says so.
    lead_flags = [f for s in response.paragraphs[1].sentences for f in s.flags]
    assert pb.Sentence.MARKUP_PLACED in lead_flags and response.info.flag_counts["MARKUP_PLACED"] >= 2


def test_markup_around_text_the_model_keeps_is_anchored_to_it() -> None:
    from tarjama.server.html_doc import translated
    from tarjama.server.pipeline import TranslatedDocument, TranslatedParagraph, TranslatedSentence

    document = parse_html('<p>قالت <b>CNN</b> إن <a href="/m">الاجتماع</a> انتهى.<br>ثم غادروا.</p>')
    source = document.paragraphs[0]
    assert source == "قالت CNN إن الاجتماع انتهى. ثم غادروا."
    first, second = source.index("ثم"), len(source)
    sentences = (
        TranslatedSentence(source[: first - 1], "CNN said the meeting ended.", 0, first - 1, (), 0.9, 9),
        TranslatedSentence(source[first:], "Then they left.", first, second, (), 0.9, 4),
    )
    paragraph = TranslatedParagraph(0, source, " ".join(s.translation for s in sentences), sentences)
    result = translated(document, TranslatedDocument("", (paragraph,), (), 2, 0, 13, 9, 0))
    out = fragment(result.html)
    assert out.find(".//b").text == "CNN" and words(out) == "CNN said the meeting ended. Then they left."
    assert out.find(".//br") is not None and out.find(".//a").text and out.find(".//a").get("href") == "/m"
    flags = [s.flags for s in result.paragraphs[0].sentences]
    assert flags == [("MARKUP_PLACED",), ()], "the link was placed by position in the first sentence; CNN anchored"


def test_malformed_html_is_repaired_and_a_whole_page_stays_a_page(hardened_server, memorised_pairs) -> None:
    (a0, e0), (a1, e1), (a2, e2) = memorised_pairs[:3]
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        broken = client.translate(html=f"<p>{a0}<p>{a1}<div><b>{a2}")
        page = client.translate(
            html=f"<!DOCTYPE html><html lang='ar'><head><title>{a0}</title></head><body><p>{a1}</p></body></html>"
        )
    repaired = fragment(broken.html)
    assert [words(p) for p in repaired.iterdescendants("p")][:2] == [e0, e1] and e2 in words(repaired)
    assert page.html.startswith("<!DOCTYPE html>") and f"<title>{e0}</title>" in page.html
    assert re.search(rf"<p>{re.escape(e1)}</p>", page.html)


def test_bad_html_requests_are_refused_with_a_reason(hardened_server, memorised_pairs) -> None:
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        for kwargs, expected in (
            ({"html": "<p>only English</p>"}, "no Arabic text"),
            ({"html": "<div>" * 300 + memorised_pairs[0][0]}, "nested"),
            ({"html": "<p>نص</p>", "text": "نص"}, "only one of them"),
            ({"html": "<p>" + "نص " * 120_000 + "</p>"}, "characters"),
        ):
            text = kwargs.pop("text", None)
            with pytest.raises(TarjamaError) as refused:
                client.translate(text, **kwargs)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and expected in refused.value.message


def test_html_streams_its_blocks_then_the_document(hardened_server, memorised_pairs) -> None:
    from tarjama.client.client import response_from_stream

    html, _ = cms_article(memorised_pairs)
    with TarjamaClient(hardened_server.address, timeout=60) as client:
        messages = list(client.translate_stream(html=html, id="cms"))
        whole = client.translate(html=html, id="cms")
    assert not messages[-1].paragraphs and messages[-1].done and messages[-1].html
    assert [p.locator for m in messages[:-1] for p in m.paragraphs] == parse_html(html).locators
    streamed = response_from_stream(messages)
    streamed.info.ClearField("timings")
    whole.info.ClearField("timings")
    assert streamed == whole


def test_the_cli_translates_an_html_file_to_html(hardened_server, memorised_pairs, tmp_path) -> None:
    html, english = cms_article(memorised_pairs)
    page = tmp_path / "story.html"
    page.write_text(html, encoding="utf-8")
    done = run_cli("translate", str(page), "--no-summary", "--server", hardened_server.address)
    assert done.returncode == 0, done.stderr
    out = fragment(done.stdout)
    assert words(out.find(".//h1")) == english["h1"] and out.find(".//pre").text == CODE


def fake_translation(document, english: list[str]):  # noqa: ANN001, ANN201
    """A TranslatedDocument giving each paragraph of `document` the English given, as one sentence."""
    from tarjama.server.pipeline import TranslatedDocument, TranslatedParagraph, TranslatedSentence

    paragraphs = tuple(
        TranslatedParagraph(i, text, out, (TranslatedSentence(text, out, 0, len(text), (), 0.9, 3),))
        for i, (text, out) in enumerate(zip(document.paragraphs, english, strict=True))
    )
    return TranslatedDocument("", paragraphs, (), len(paragraphs), 0, 0, 0, 0)


def test_attributes_of_inline_markup_and_blocks_inside_links_are_translated() -> None:
    from tarjama.server.html_doc import translated

    document = parse_html(
        '<p>قالت <a title="عنوان الرابط" href="/m">الوزارة</a> ذلك <img src="i.png" alt="صورة"> أمس.</p>'
        '<a href="/card" class="card"><div>بطاقة الخبر</div></a>'
    )
    assert document.paragraphs == ["قالت الوزارة ذلك أمس.", "بطاقة الخبر", "عنوان الرابط", "صورة"]
    result = translated(document, fake_translation(document, ["The ministry said so yesterday.", "The story card",
                                                               "The link's title", "A picture"]))  # fmt: skip
    out = fragment(result.html)
    link = out.find(".//p/a")
    assert link.get("title") == "The link's title" and link.get("href") == "/m" and link.text
    assert out.find(".//p/img").get("alt") == "A picture" and out.find(".//p/img").get("src") == "i.png"
    assert words(out.find(".//p")) == "The ministry said so yesterday."
    card = out.find("a[@class='card']")
    assert card.get("href") == "/card" and words(card.find("div")) == "The story card"
    assert [p.locator for p in result.paragraphs] == ["p:nth-of-type(1)", "a:nth-of-type(1) > div:nth-of-type(1)",
                                                      "p:nth-of-type(1) > a:nth-of-type(1)@title",
                                                      "p:nth-of-type(1) > img:nth-of-type(1)@alt"]  # fmt: skip
