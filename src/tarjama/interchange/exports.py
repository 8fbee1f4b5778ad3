"""Exports for translators' CAT tools (memoQ, Trados, OmegaT): XLIFF 2.0 and TMX 1.4.

- XLIFF 2.0: one `<unit>` per paragraph and one `<segment>` per sentence, with `<source>` and
  `<target>`. The white space between sentences goes in `<ignorable>` elements, so a unit's sources
  joined in order are the paragraph exactly as sent. A flagged sentence is marked
  `subState="tarjama:review"` and its flags are a `<note>` of the unit.
- TMX 1.4: one `<tu>` per sentence (Arabic and English `<tuv>`), flags as a `<prop>`.

Written with the standard library's ElementTree (escaping is its job, not ours). XML 1.0 cannot carry
most control characters at all: the few an article may hold are replaced by U+FFFD.

A response is checked before it is rendered (`check_export`): sentence offsets in their paragraph, in
order and not overlapping, known flags. So each character of a paragraph's source is written once (in
a segment's sentence or in one `<ignorable>`) and the output is linear in the response.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tarjama import __version__
from tarjama.v1 import tarjama_pb2 as pb

XLIFF_NS = "urn:oasis:names:tc:xliff:document:2.0"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_FLAG_NAMES = frozenset(pb.Sentence.Flag.values())
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class ExportError(ValueError):
    """A response that cannot be exported; the message names the paragraph, the sentence and the field."""


@dataclass(frozen=True)
class ExportLimits:
    """What a server accepts in one export (`--max-paragraphs`, `--max-characters`, `--max-id-characters`)."""

    max_paragraphs: int
    max_characters: int
    max_id_characters: int


def check_export(response: pb.TranslateResponse, limits: ExportLimits | None = None) -> None:
    """Raise ExportError unless `response` can be exported as its paragraphs say: every sentence's
    0 <= source_start <= source_end <= len(source), in order and not overlapping, paragraph indices
    increasing, flags that exist; and, given `limits`, within them. Linear in the response."""
    if limits is not None:
        if len(response.id) > limits.max_id_characters:
            raise ExportError(f"id has {len(response.id)} characters; this server accepts at most "
                              f"{limits.max_id_characters}")  # fmt: skip
        if len(response.paragraphs) > limits.max_paragraphs:
            raise ExportError(f"the export has {len(response.paragraphs)} paragraphs; this server accepts at most "
                              f"{limits.max_paragraphs}")  # fmt: skip
    characters = 0
    previous_index = -1
    for p, paragraph in enumerate(response.paragraphs):
        where = f"paragraphs[{p}]"
        if paragraph.index <= previous_index:
            after = f"after the one before ({previous_index})" if p else "0 or more"
            raise ExportError(f"{where}.index is {paragraph.index}, not {after}: paragraphs go in order from 0, "
                              "each index once")  # fmt: skip
        previous_index = paragraph.index
        length = len(paragraph.source)
        characters += length
        position = 0
        for s, sentence in enumerate(paragraph.sentences):
            at = f"{where}.sentences[{s}]"
            start, end = sentence.source_start, sentence.source_end
            if not 0 <= start < end <= length:
                raise ExportError(f"{at}: source_start {start} and source_end {end} must satisfy 0 <= source_start "
                                  f"< source_end <= {length} (the length of {where}.source): a sentence is at least "
                                  "one character of its paragraph")  # fmt: skip
            if start < position:
                raise ExportError(f"{at}.source_start is {start}, before the end of the sentence before it "
                                  f"({position}): sentences go in order and do not overlap")  # fmt: skip
            # The sentence is what its offsets say, or the export would write one text where another was
            # (an English-only "HELLO" over 21 characters of Arabic); compared without copying the slice.
            if len(sentence.source) != end - start or not paragraph.source.startswith(sentence.source, start):
                raise ExportError(f"{at}.source is not {where}.source[{start}:{end}]")
            position = end
            for flag in sentence.flags:
                if flag not in _FLAG_NAMES:
                    raise ExportError(f"{at}.flags: {flag} is not a Sentence.Flag")
    if limits is not None:
        if characters > limits.max_characters:
            raise ExportError(f"the paragraphs' sources have {characters} characters; this server accepts at most "
                              f"{limits.max_characters}")  # fmt: skip


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def flag_names(sentence: pb.Sentence) -> list[str]:
    return [pb.Sentence.Flag.Name(f) for f in sentence.flags]


def _serialise(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _preserved(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {XML_SPACE: "preserve"})
    element.text = xml_text(text)
    return element


def render_xliff(response: pb.TranslateResponse) -> str:
    """The response as an XLIFF 2.0 document (Arabic source, English target); ExportError if it is not
    one `check_export` accepts."""
    check_export(response)
    ET.register_namespace("", XLIFF_NS)
    q = f"{{{XLIFF_NS}}}"
    root = ET.Element(f"{q}xliff", {"version": "2.0", "srcLang": "ar", "trgLang": "en"})
    file = ET.SubElement(root, f"{q}file", {"id": "f1", "original": xml_text(response.id or "article")})
    for paragraph in response.paragraphs:
        unit = ET.SubElement(file, f"{q}unit", {"id": f"p{paragraph.index + 1}"})
        flagged = [(i, s) for i, s in enumerate(paragraph.sentences, 1) if s.flags]
        if flagged:  # notes come first in a unit
            notes = ET.SubElement(unit, f"{q}notes")
            for i, sentence in flagged:
                note = ET.SubElement(notes, f"{q}note", {"category": "tarjama:flags", "id": f"n{i}"})
                note.text = f"sentence {i}: {', '.join(flag_names(sentence))}"
        position = 0
        for i, sentence in enumerate(paragraph.sentences, 1):
            if sentence.source_start > position:
                gap = ET.SubElement(unit, f"{q}ignorable")
                _preserved(gap, f"{q}source", paragraph.source[position : sentence.source_start])
            attributes = {"id": f"p{paragraph.index + 1}s{i}", "state": "translated"}
            if sentence.flags:
                attributes["subState"] = "tarjama:review"
            segment = ET.SubElement(unit, f"{q}segment", attributes)
            _preserved(segment, f"{q}source", sentence.source)
            _preserved(segment, f"{q}target", sentence.translation)
            position = sentence.source_end
        if position < len(paragraph.source):
            gap = ET.SubElement(unit, f"{q}ignorable")
            _preserved(gap, f"{q}source", paragraph.source[position:])
    return _serialise(root)


def tuid_prefix(id: str) -> str:
    """What each translation unit's id starts with, so that units stay unique in a memory of many
    articles: the document id, or for a long one a short hash of it (it is written once per sentence,
    and a 256-character id of `&`s made the export 475 times its request)."""
    if not id:
        return ""
    return f"{id}:" if len(id) <= 64 else f"{hashlib.sha256(id.encode()).hexdigest()[:16]}:"


def render_tmx(response: pb.TranslateResponse) -> str:
    """The response's sentence pairs as a TMX 1.4 translation memory; ExportError as for XLIFF."""
    check_export(response)
    root = ET.Element("tmx", {"version": "1.4"})
    ET.SubElement(
        root,
        "header",
        {
            "creationtool": "Tarjama",
            "creationtoolversion": __version__,
            "segtype": "sentence",
            "o-tmf": "tarjama",
            "adminlang": "en",
            "srclang": "ar",
            "datatype": "plaintext",
        },
    )
    body = ET.SubElement(root, "body")
    prefix = tuid_prefix(response.id)
    for paragraph in response.paragraphs:
        for i, sentence in enumerate(paragraph.sentences, 1):
            unit = ET.SubElement(body, "tu", {"tuid": xml_text(f"{prefix}p{paragraph.index + 1}s{i}")})
            if sentence.flags:
                prop = ET.SubElement(unit, "prop", {"type": "x-tarjama-flags"})
                prop.text = " ".join(flag_names(sentence))
            for lang, text in (("ar", sentence.source), ("en", sentence.translation)):
                variant = ET.SubElement(unit, "tuv", {XML_LANG: lang})
                ET.SubElement(variant, "seg").text = xml_text(text)
    return _serialise(root)
