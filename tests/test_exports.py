"""XLIFF 2.0 and TMX exports: they parse, carry every sentence, and give the paragraphs back exactly."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
    xliff = ET.parse(tmp_path / "out" / "story.xlf").getroot()
    targets = [[t.text for t in u.iter(f"{XLIFF}target")] for u in xliff.iter(f"{XLIFF}unit")]
    assert [" ".join(t) for t in targets] == english
    tmx = ET.parse(tmp_path / "out" / "story.tmx").getroot()
    assert len(tmx.findall("body/tu")) == 6
    two = run_cli("translate", str(source), str(source), "--format", "tmx", "--server", hardened_server.address)
    assert two.returncode == 2 and "give --output-dir" in two.stderr
