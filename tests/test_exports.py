"""XLIFF 2.0 and TMX exports: they parse, carry every sentence, and give the paragraphs back exactly."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from tarjama.client.client import to_dict
from tarjama.client.formats import render
from tarjama.v1 import tarjama_pb2 as pb

from conftest import article, run_cli

XLIFF = "{urn:oasis:names:tc:xliff:document:2.0}"
LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def response_of(paragraphs: list[list[tuple[str, str, list[int]]]], gap: str = "  ") -> pb.TranslateResponse:
    """A response built as the server builds one: sentences with offsets, flags, and white space between."""
    out = pb.TranslateResponse(id='خبر <1> & "2"')
    for index, sentences in enumerate(paragraphs):
        source, built = " " if index == 1 else "", []  # paragraph 2 starts with white space
        for arabic, english, flags in sentences:
            if source.strip():
                source += gap
            start = len(source)
            source += arabic
            built.append(pb.Sentence(source=arabic, translation=english, source_start=start,
                                     source_end=len(source), flags=flags))  # fmt: skip
        out.paragraphs.append(
            pb.Paragraph(index=index, source=source, translation=" ".join(s[1] for s in sentences), sentences=built)
        )
    return out


def tricky(memorised_pairs: list[tuple[str, str]]) -> pb.TranslateResponse:
    pairs = memorised_pairs
    return response_of(
        [
            [(pairs[0][0], pairs[0][1], []), (pairs[1][0] + " <b>&amp;</b>", "x < y & z", [pb.Sentence.OUTPUT_CAPPED])],
            [(pairs[2][0], pairs[2][1], [pb.Sentence.SPLIT, pb.Sentence.LENGTH_RATIO])],
            [("Reuters \x0b", "Reuters \x0b", [pb.Sentence.PASSTHROUGH])],
        ]
    )


def test_xliff_has_a_unit_per_paragraph_and_a_segment_per_sentence(memorised_pairs) -> None:
    response = tricky(memorised_pairs)
    root = ET.fromstring(render(response, "xliff").encode())
    assert root.tag == f"{XLIFF}xliff" and root.get("version") == "2.0"
    assert (root.get("srcLang"), root.get("trgLang")) == ("ar", "en")
    assert root.find(f"{XLIFF}file").get("original") == response.id
    units = root.findall(f".//{XLIFF}unit")
    assert len(units) == len(response.paragraphs)
    for unit, paragraph in zip(units, response.paragraphs, strict=True):
        segments = unit.findall(f"{XLIFF}segment")
        expected = [(s.source, s.translation) for s in paragraph.sentences]
        expected = [(a.replace("\x0b", "\ufffd"), e.replace("\x0b", "\ufffd")) for a, e in expected]
        assert [(s.find(f"{XLIFF}source").text, s.find(f"{XLIFF}target").text) for s in segments] == expected
        # Segments and the white space between them, in order, give the paragraph back as sent.
        parts = [child.find(f"{XLIFF}source").text for child in unit if child.tag != f"{XLIFF}notes"]
        assert "".join(parts) == paragraph.source.replace("\x0b", "\ufffd")
        flagged = [i for i, s in enumerate(paragraph.sentences, 1) if s.flags]
        notes = [n.text for n in unit.findall(f"{XLIFF}notes/{XLIFF}note")]
        assert len(notes) == len(flagged)
        for segment, sentence in zip(segments, paragraph.sentences, strict=True):
            assert (segment.get("subState") == "tarjama:review") == bool(sentence.flags)
    assert "sentence 2: OUTPUT_CAPPED" in render(response, "xliff")
    assert "sentence 1: SPLIT, LENGTH_RATIO" in render(response, "xliff")


def test_tmx_has_a_translation_unit_per_sentence(memorised_pairs) -> None:
    response = tricky(memorised_pairs)
    root = ET.fromstring(render(response, "tmx").encode())
    assert root.get("version") == "1.4" and root.find("header").get("srclang") == "ar"
    units = root.findall("body/tu")
    sentences = [s for p in response.paragraphs for s in p.sentences]
    assert len(units) == len(sentences)
    for unit, sentence in zip(units, sentences, strict=True):
        variants = {tuv.get(LANG): tuv.find("seg").text for tuv in unit.findall("tuv")}
        assert variants == {
            "ar": sentence.source.replace("\x0b", "\ufffd"),
            "en": sentence.translation.replace("\x0b", "\ufffd"),
        }
        prop = unit.find("prop")
        assert (prop.text.split() if prop is not None else []) == [pb.Sentence.Flag.Name(f) for f in sentence.flags]
    assert len({u.get("tuid") for u in units}) == len(units)


def test_the_cli_exports_a_served_article(hardened_server, memorised_pairs, tmp_path) -> None:
    arabic, english = article(memorised_pairs, [2, 1, 3])
    source = tmp_path / "story.txt"
    source.write_text("\n\n".join(arabic), encoding="utf-8")
    for fmt in ("xliff", "tmx"):
        done = run_cli("translate", str(source), "--format", fmt, "--output-dir", str(tmp_path / "out"),
                       "--server", hardened_server.address)  # fmt: skip
        assert done.returncode == 0, done.stderr
    xliff = ET.parse(tmp_path / "out" / "story.en.xlf").getroot()
    targets = [[t.text for t in u.iter(f"{XLIFF}target")] for u in xliff.iter(f"{XLIFF}unit")]
    assert [" ".join(t) for t in targets] == english
    tmx = ET.parse(tmp_path / "out" / "story.en.tmx").getroot()
    assert len(tmx.findall("body/tu")) == 6
    two = run_cli("translate", str(source), str(source), "--format", "tmx", "--server", hardened_server.address)
    assert two.returncode == 2 and "give --output-dir" in two.stderr


# -- issue 17 item 2: an export is checked, and its output is linear in what it is given ------------


def test_check_export_names_the_paragraph_sentence_and_field(memorised_pairs) -> None:
    from tarjama.interchange.exports import ExportError, ExportLimits, check_export

    limits = ExportLimits(max_paragraphs=3, max_characters=10_000, max_id_characters=256)
    check_export(tricky(memorised_pairs), limits)  # what the server gives is accepted

    def refused(response: pb.TranslateResponse) -> str:
        with pytest.raises(ExportError) as error:
            check_export(response, limits)
        return str(error.value)

    def broken(change) -> pb.TranslateResponse:  # noqa: ANN001
        response = tricky(memorised_pairs)
        change(response)
        return response

    first = lambda r: r.paragraphs[0].sentences  # noqa: E731
    assert "paragraphs[0].sentences[0]: source_start 1000000 and source_end 0" in refused(
        broken(lambda r: (setattr(first(r)[0], "source_start", 1_000_000), setattr(first(r)[0], "source_end", 0)))
    )
    assert "paragraphs[0].sentences[1]: source_start 0 and source_end 999" in refused(
        broken(lambda r: (setattr(first(r)[1], "source_start", 0), setattr(first(r)[1], "source_end", 999)))
    )
    assert "paragraphs[0].sentences[1].source_start is 0, before the end of the sentence before it" in refused(
        broken(lambda r: setattr(first(r)[1], "source_start", 0))
    )
    assert "paragraphs[0].sentences[0].flags: 999 is not a Sentence.Flag" in refused(
        broken(lambda r: first(r)[0].flags.append(999))
    )
    assert "paragraphs[1].index is 0" in refused(broken(lambda r: setattr(r.paragraphs[1], "index", 0)))
    assert "4 paragraphs; this server accepts at most 3" in refused(
        broken(lambda r: r.paragraphs.append(pb.Paragraph(index=3)))
    )
    assert "id has 300 characters" in refused(broken(lambda r: setattr(r, "id", "x" * 300)))
    assert "sources have 10161 characters; this server accepts at most 10000" in refused(
        broken(lambda r: setattr(r.paragraphs[2], "source", r.paragraphs[2].source + "x" * 10_000))
    )
    # Empty sentences cost no input characters but a segment each: refused, so sentences are at most characters.
    empty = pb.Sentence(source_start=9, source_end=9)  # at the end of paragraph 3's "Reuters \x0b"
    assert "a sentence is at least one character of its paragraph" in refused(
        broken(lambda r: r.paragraphs[2].sentences.extend([empty] * 10_000))
    )
    with pytest.raises(ExportError):  # the CLI's renderers check the offsets too
        render(broken(lambda r: setattr(first(r)[0], "source_end", 10_000)), "xliff")


def large_response(memorised_pairs) -> pb.TranslateResponse:  # noqa: ANN001
    """A response as the server gives one for an article near --max-characters (200,000)."""
    sentences = [(a, e, []) for a, e in memorised_pairs]
    shape, total = [], 0
    while total < 190_000:
        paragraph = [sentences[(len(shape) * 3 + j) % len(sentences)] for j in range(3)]
        shape.append(paragraph)
        total += sum(len(a) + 2 for a, _, _ in paragraph)
    return response_of(shape)


@pytest.fixture(scope="module")
def export_server(fixture_models, cache_dir):  # noqa: ANN001, ANN201
    from conftest import serving_http

    with serving_http(fixture_models, cache_dir) as process:
        yield process


def post(url: str, body: bytes, timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_inverted_offsets_are_refused_and_a_large_export_is_linear(export_server, memorised_pairs) -> None:
    from conftest import HealthMonitor

    # The report: one paragraph with a large source and K sentences at sourceStart 1000000, sourceEnd 0
    # wrote the whole source into an <ignorable> per sentence (K=300: a 0.97 MB body gave 287 MB).
    source = "ب" * 190_000
    bogus = {"source": "س", "translation": "x", "sourceStart": 1_000_000, "sourceEnd": 0}
    inverted = json.dumps({"paragraphs": [{"source": source, "sentences": [bogus] * 300}]}).encode()
    valid = large_response(memorised_pairs)
    valid_body = json.dumps(to_dict(valid), ensure_ascii=False).encode()
    assert len(valid_body) > 1_000_000
    base = export_server.http
    with HealthMonitor(export_server.address) as health:
        for fmt in ("xliff", "tmx"):
            started = time.monotonic()
            status, answer = post(f"{base}/v1/export?format={fmt}", inverted)
            assert time.monotonic() - started < 5
            message = json.loads(answer)["error"]["message"]
            assert status == 400 and "paragraphs[0].sentences[0]: source_start 1000000 and source_end 0" in message
            status, answer = post(f"{base}/v1/export?format={fmt}", valid_body)
            assert status == 200
            # Each character is written a constant number of times: the answer is about the size of the body.
            assert len(answer) < 2 * len(valid_body), f"{fmt}: {len(answer)} bytes for a {len(valid_body)}-byte body"
            if fmt == "xliff":
                units = ET.fromstring(answer).findall(f".//{XLIFF}unit")
                assert len(units) == len(valid.paragraphs)
    health.check("exports of inverted offsets and of a 1 MB body")  # 100 ms plus the idle baseline


def test_an_export_is_linear_in_what_it_is_given(memorised_pairs) -> None:
    """Found by an attacker: 200,000 empty sentences ({}) under a 256-character id of '&' made a 600 KB
    request a 285 MB TMX; a sentence whose source is not its offsets' text was written as given."""
    from tarjama.interchange.exports import ExportError, ExportLimits, check_export, render_tmx

    limits = ExportLimits(max_paragraphs=3, max_characters=10_000, max_id_characters=256)
    empty = pb.TranslateResponse(paragraphs=[pb.Paragraph(index=0, source="قال.", sentences=[pb.Sentence()] * 3)])
    with pytest.raises(ExportError, match="a sentence is at least one character"):
        check_export(empty, limits)
    arabic = "قال إنه صنع. جرس باب."
    other = pb.TranslateResponse(paragraphs=[pb.Paragraph(index=0, source=arabic, sentences=[
        pb.Sentence(source="HELLO", source_start=0, source_end=len(arabic))])])  # fmt: skip
    with pytest.raises(ExportError, match=r"sentences\[0\].source is not paragraphs\[0\].source\[0:21\]"):
        check_export(other, limits)
    # One-character sentences under the longest id: the TMX stays within a small multiple of the request.
    source = "ب" * 5000
    response = pb.TranslateResponse(id="&" * 256, paragraphs=[pb.Paragraph(index=0, source=source, sentences=[
        pb.Sentence(source="ب", translation="b", source_start=i, source_end=i + 1) for i in range(5000)])])  # fmt: skip
    check_export(response, limits)
    request_bytes = len(json.dumps(to_dict(response)).encode())
    assert len(render_tmx(response).encode()) < 8 * request_bytes
