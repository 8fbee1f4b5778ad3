"""Exports for translators' CAT tools (memoQ, Trados, OmegaT): XLIFF 2.0 and TMX 1.4.

- XLIFF 2.0: one `<unit>` per paragraph and one `<segment>` per sentence, with `<source>` and
  `<target>`. The white space between sentences goes in `<ignorable>` elements, so a unit's sources
  joined in order are the paragraph exactly as sent. A flagged sentence is marked
  `subState="tarjama:review"` and its flags are a `<note>` of the unit.
- TMX 1.4: one `<tu>` per sentence (Arabic and English `<tuv>`), flags as a `<prop>`.

Written with the standard library's ElementTree (escaping is its job, not ours). XML 1.0 cannot carry
most control characters at all: the few an article may hold are replaced by U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tarjama import __version__
from tarjama.v1 import tarjama_pb2 as pb

XLIFF_NS = "urn:oasis:names:tc:xliff:document:2.0"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


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
    """The response as an XLIFF 2.0 document (Arabic source, English target)."""
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


def render_tmx(response: pb.TranslateResponse) -> str:
    """The response's sentence pairs as a TMX 1.4 translation memory."""
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
    prefix = f"{response.id}:" if response.id else ""
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
