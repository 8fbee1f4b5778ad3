"""HTML in, HTML out: a CMS article's blocks translated in place, its markup kept.

Parsing is lxml's (libxml2's HTML parser, which repairs malformed markup rather than refusing it).
- Paragraphs: the runs of text and inline markup in block elements (p, h1-h6, li, td, th,
  blockquote, figcaption, dd, dt, and any div or other container that holds text directly), the
  document's <title>, and the `alt` and `title` attributes. Each goes through the pipeline as one
  paragraph, so sentences are split, translated and checked as for text.
- Never translated, returned as they came: script, style, code, pre, kbd, samp, var, textarea,
  comments, every other attribute (href, src, datetime ...), and any element with translate="no" or
  the class notranslate (with everything inside).
- Inline markup (a, strong, em, span, br, ...) is put back around the English. An element whose text
  comes back verbatim in the English (a Latin name, a number, a code) is wrapped around that text; any
  other is placed by its relative position in its sentence, and the sentence is flagged
  MARKUP_PLACED so that an editor checks which words it wraps. No element is ever dropped.
Each paragraph has a locator: a CSS selector of its element, then "@alt" / "@title" for an attribute,
or "~N" for the element's Nth run of inline text when block children split it (from 0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import lxml.etree as etree
import lxml.html

from .errors import InvalidRequest
from .flags import Flag
from .pipeline import TranslatedDocument, TranslatedParagraph
from .segmentation import has_arabic

BLOCKS = frozenset(
    "p h1 h2 h3 h4 h5 h6 li td th blockquote figcaption dd dt div caption summary legend label address "
    "article section header footer aside nav main figure ul ol dl table thead tbody tfoot tr form fieldset "
    "details body html dialog hgroup menu center".split()
)
# Inline elements whose text is translated with the sentence around it.
INLINE = frozenset(
    "a abbr b bdi bdo cite data del dfn em font i ins mark q s small span strong sub sup time u big tt".split()
)
# Left exactly as they are, with everything inside.
UNTOUCHED = frozenset("script style code pre kbd samp var textarea template noscript svg math iframe object".split())
# Untouched elements that end a run of text (a <code> inside a sentence does not; a <pre> does).
BLOCK_LEVEL_UNTOUCHED = frozenset("pre textarea template svg math iframe object noscript".split())
TRANSLATED_ATTRIBUTES = ("alt", "title")
MAX_DEPTH = 200  # libxml2 flattens markup nested deeper than 255; refused before that happens
_SPACE = re.compile(r"\s+")


def untouched(element: etree._Element) -> bool:
    if not isinstance(element.tag, str):  # comments, processing instructions
        return True
    if element.tag in UNTOUCHED or element.get("translate", "").lower() == "no":
        return True
    return "notranslate" in (element.get("class") or "").split()


@dataclass
class Wrapper:
    """An element of a run and the span of the run's text it wraps (empty for br, img, code ...)."""

    element: etree._Element  # the element in the parsed document
    start: int
    end: int
    depth: int
    # Untouched, void, or a block inside inline markup: moved into the English as it is (a block inside
    # has been translated in place by then), never refilled.
    keep_whole: bool = False


@dataclass
class Run:
    """A run of inline content in one element: its text as the model sees it and its inline markup."""

    parent: etree._Element
    first: int  # index in parent of the first child in the run (len(parent) when it has none)
    count: int  # children in the run
    leading: bool  # whether the run starts with the parent's own text (not a child's tail)
    locator: str
    text: str = ""
    wrappers: list[Wrapper] = field(default_factory=list)


@dataclass
class AttributeUnit:
    element: etree._Element
    name: str
    locator: str
    text: str


@dataclass
class HtmlDocument:
    root: etree._Element
    whole_document: bool  # the input had <html>/<body>/doctype: the output is a whole document too
    doctype: str
    runs: list[Run]
    attributes: list[AttributeUnit]

    @property
    def paragraphs(self) -> list[str]:
        return [r.text for r in self.runs] + [a.text for a in self.attributes]

    @property
    def locators(self) -> list[str]:
        return [r.locator for r in self.runs] + [a.locator for a in self.attributes]


def parse_html(html: str) -> HtmlDocument:
    """The document's translatable paragraphs; raises InvalidRequest for markup that cannot be used."""
    whole = re.search(r"<\s*(?:!doctype|html|body)\b", html[:4096], re.IGNORECASE) is not None
    try:
        if whole:
            root = lxml.html.document_fromstring(html)
        else:
            root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError) as exc:
        raise InvalidRequest(f"html: cannot be parsed ({exc})") from None
    if depth_of(root) >= MAX_DEPTH:
        raise InvalidRequest(f"html: elements are nested {MAX_DEPTH} or more deep; this server accepts less")
    doctype = root.getroottree().docinfo.doctype if whole else ""
    runs: list[Run] = []
    attributes: list[AttributeUnit] = []
    for element in root.iter():
        if not isinstance(element.tag, str) or any(untouched(a) for a in [element, *element.iterancestors()]):
            continue
        for name in TRANSLATED_ATTRIBUTES:
            value = element.get(name)
            if value and has_arabic(value):
                attributes.append(AttributeUnit(element, name, f"{selector(element, root)}@{name}", value))
        if element.tag in INLINE:
            continue  # its text belongs to the run of the block around it
        runs.extend(r for r in runs_of(element, root) if has_arabic(r.text))
    if not runs and not attributes:
        raise InvalidRequest("html: there is no Arabic text to translate in it")
    return HtmlDocument(root, whole, doctype or "", runs, attributes)


def depth_of(root: etree._Element) -> int:
    deepest, stack = 0, [(root, 0)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest


def selector(element: etree._Element, root: etree._Element) -> str:
    """A CSS selector of `element` from the document (or fragment) root."""
    parts = []
    while element is not None and element is not root:
        parent = element.getparent()
        same = [c for c in parent if c.tag == element.tag] if parent is not None else [element]
        parts.append(f"{element.tag}:nth-of-type({same.index(element) + 1})")
        element = parent
    return " > ".join(reversed(parts)) or ":root"


def runs_of(element: etree._Element, root: etree._Element) -> list[Run]:
    """The element's runs of inline content, split by its block (or untouched block-level) children."""
    runs: list[Run] = []
    base = selector(element, root)
    current = Run(element, 0, 0, True, base)
    _add_text(current, element.text)
    for index, child in enumerate(element):
        if isinstance(child.tag, str) and (child.tag in BLOCKS or child.tag in BLOCK_LEVEL_UNTOUCHED):
            runs.append(current)
            current = Run(element, index + 1, 0, False, base)
            _add_text(current, child.tail)
            continue
        if current.count == 0:
            current.first = index
        current.count += 1
        _add_inline(current, child, 0)
        _add_text(current, child.tail)
    runs.append(current)
    runs = [r for r in runs if r.text.strip()]
    for n, run in enumerate(runs):
        run.text = run.text.strip()
        if len(runs) > 1:
            run.locator = f"{base}~{n}"
    return runs


def _add_text(run: Run, text: str | None) -> None:
    """Append text with white space collapsed (offsets are in the collapsed text the model sees)."""
    if not text:
        return
    collapsed = _SPACE.sub(" ", text)
    if run.text.endswith(" ") and collapsed.startswith(" "):
        collapsed = collapsed[1:]
    if not run.text and collapsed.startswith(" "):
        collapsed = collapsed[1:]
    run.text += collapsed


def _add_inline(run: Run, element: etree._Element, depth: int) -> None:
    start = len(run.text)
    if untouched(element) or not isinstance(element.tag, str) or element.tag not in INLINE:
        run.wrappers.append(Wrapper(element, start, start, depth, keep_whole=True))
        if element.tag == "br":
            _add_text(run, " ")  # a line break separates words (and sentences) for the model
        return
    wrapper = Wrapper(element, start, start, depth)
    run.wrappers.append(wrapper)
    _add_text(run, element.text)
    for child in element:
        _add_inline(run, child, depth + 1)
        _add_text(run, child.tail)
    wrapper.end = len(run.text)


# -- putting the English back ---------------------------------------------------------------------


@dataclass
class SentenceSpan:
    """Where one sentence of a run sits in the source text and in the English text."""

    source_start: int
    source_end: int
    english_start: int
    english_end: int


def place(wrapper: Wrapper, source: str, english: str, sentences: list[SentenceSpan]) -> tuple[int, int, bool]:
    """The English span for an inline element, and whether it was placed by position (not anchored)."""
    text = source[wrapper.start : wrapper.end].strip()
    whole = SentenceSpan(0, len(source), 0, len(english))
    sentence = sentences[_sentence_at(wrapper.start, sentences)] if sentences else whole
    if text and not has_arabic(text):
        found = english.find(text, sentence.english_start)
        if found < 0:
            found = english.find(text)
        if found >= 0:
            return found, found + len(text), False
    return _by_position(wrapper.start, sentence, english), _by_position(wrapper.end, sentence, english, end=True), True


def _by_position(offset: int, sentence: SentenceSpan, english: str, end: bool = False) -> int:
    """A source offset mapped to the nearest English word boundary at the same relative position."""
    length = max(1, sentence.source_end - sentence.source_start)
    ratio = min(1.0, max(0.0, (offset - sentence.source_start) / length))
    target = sentence.english_start + round(ratio * (sentence.english_end - sentence.english_start))
    target = max(sentence.english_start, min(target, sentence.english_end))
    # Move to a word boundary: forward for an end, backward for a start.
    if end:
        while target < sentence.english_end and target > 0 and english[target - 1] != " " and english[target] != " ":
            target += 1
    else:
        while target > sentence.english_start and english[target - 1] != " ":
            target -= 1
    return target


def fill(run: Run, english: str, sentences: list[SentenceSpan]) -> tuple[dict, set[int]]:
    """Where the run's markup goes in the English (a tree of spans, rendered by `_render` once the
    attributes are translated), and the sentences whose markup was placed by position."""
    placed: list[tuple[int, int, Wrapper]] = []
    estimated: set[int] = set()
    for wrapper in run.wrappers:
        if wrapper.keep_whole and wrapper.start == wrapper.end:
            sentence = _sentence_at(wrapper.start, sentences)
            position = _by_position(wrapper.start, sentences[sentence], english) if sentences else len(english)
            placed.append((position, position, wrapper))
            continue
        start, end, by_position = place(wrapper, run.text, english, sentences)
        if by_position:
            estimated.add(_sentence_at(wrapper.start, sentences))
            if end <= start and wrapper.end > wrapper.start:  # it wrapped words: it wraps at least one
                following = english.find(" ", start + 1)
                end = len(english) if following < 0 else following
        placed.append((start, max(start, end), wrapper))
    return _nest(english, placed), estimated


def _sentence_at(offset: int, sentences: list[SentenceSpan]) -> int:
    for i, s in enumerate(sentences):
        if offset < s.source_end:
            return i
    return max(0, len(sentences) - 1)


def _nest(english: str, placed: list[tuple[int, int, Wrapper]]) -> dict:
    """Nest the wrappers in document order, each kept inside its parent and after its previous sibling."""
    root: dict = {"start": 0, "end": len(english), "children": [], "depth": -1}
    stack = [root]
    for start, end, wrapper in placed:
        while len(stack) > 1 and stack[-1]["depth"] >= wrapper.depth:
            stack.pop()
        parent = stack[-1]
        floor = parent["children"][-1]["end"] if parent["children"] else parent["start"]
        start = min(max(start, floor), parent["end"])
        end = min(max(end, start), parent["end"])
        node = {"start": start, "end": end, "children": [], "depth": wrapper.depth, "wrapper": wrapper}
        parent["children"].append(node)
        stack.append(node)
    return root


def _render(node: dict, english: str) -> list[etree._Element | str]:
    out: list[etree._Element | str] = []
    position = node["start"]
    for child in node["children"]:
        if child["start"] > position:
            out.append(english[position : child["start"]])
        wrapper: Wrapper = child["wrapper"]
        if wrapper.keep_whole:
            element = wrapper.element  # moved as it is; its tail was part of the run's text
            element.tail = None
        else:  # a fresh element with the original's tag and (by now translated) attributes
            element = etree.Element(wrapper.element.tag, dict(wrapper.element.attrib))
            _append_content(element, _render(child, english))
        out.append(element)
        position = max(position, child["end"])
    if node["end"] > position:
        out.append(english[position : node["end"]])
    return out


def _insert(
    parent: etree._Element, content: list[etree._Element | str], index: int, anchor: etree._Element | None
) -> None:
    """Put `content` into `parent` from child `index` on: text joins the anchor's tail (the parent's own
    text when there is no anchor), then the tail of the element before it."""
    last = anchor
    for item in content:
        if isinstance(item, str):
            if last is None:
                parent.text = (parent.text or "") + item
            else:
                last.tail = (last.tail or "") + item
        else:
            parent.insert(index, item)
            index += 1
            last = item


def _append_content(element: etree._Element, content: list[etree._Element | str]) -> None:
    _insert(element, content, 0, None)  # a fresh element: nothing in it yet


def replace_run(run: Run, content: list[etree._Element | str]) -> None:
    """Put the run's new content where its old text and inline children were (its trailing white
    space goes with them: the English ends the run)."""
    parent = run.parent
    for child in list(parent)[run.first : run.first + run.count]:
        parent.remove(child)
    anchor = None if run.leading else parent[run.first - 1]  # the block child the run follows
    if anchor is None:
        parent.text = None
    else:
        anchor.tail = None
    _insert(parent, content, run.first, anchor)


def serialise(document: HtmlDocument) -> str:
    if document.whole_document:
        doctype = document.doctype or None
        return lxml.html.tostring(document.root, encoding="unicode", doctype=doctype)
    root = document.root
    inner = [root.text or ""] + [lxml.html.tostring(child, encoding="unicode") for child in root]
    return "".join(inner)


class HtmlTranslation:
    """Puts a document's translation back into it, paragraph by paragraph (a stream's order), then whole.

    `paragraph()` gives each translated paragraph its locator and MARKUP_PLACED flags as it comes;
    `finish()` writes the attributes, then the runs' English with their markup, and serialises."""

    def __init__(self, document: HtmlDocument) -> None:
        self.document = document
        self.placements: dict[int, tuple[dict, str]] = {}  # run index -> (markup tree, English)

    def paragraph(self, paragraph: TranslatedParagraph) -> TranslatedParagraph:
        runs = self.document.runs
        index = paragraph.index
        if index >= len(runs):
            return replace(paragraph, locator=self.document.attributes[index - len(runs)].locator)
        spans, position = [], 0
        for sentence in paragraph.sentences:
            if sentence.translation and position:
                position += 1  # the space the paragraph's translation puts between sentences
            spans.append(SentenceSpan(sentence.start, sentence.end, position, position + len(sentence.translation)))
            position += len(sentence.translation)
        tree, estimated = fill(runs[index], paragraph.translation, spans)
        self.placements[index] = (tree, paragraph.translation)
        sentences = tuple(
            replace(s, flags=(*s.flags, Flag.MARKUP_PLACED)) if n in estimated else s
            for n, s in enumerate(paragraph.sentences)
        )
        return replace(paragraph, sentences=sentences, locator=runs[index].locator)

    def finish(self, paragraphs: Sequence[TranslatedParagraph]) -> str:
        """The document in English; `paragraphs` are all of them, as `paragraph()` returned them."""
        runs = len(self.document.runs)
        # Attributes first: the runs' markup is rebuilt from the elements' (translated) attributes.
        for j, unit in enumerate(self.document.attributes):
            unit.element.set(unit.name, paragraphs[runs + j].translation)
        for i in reversed(range(runs)):  # from the end, so earlier runs' positions stay as they were
            tree, english = self.placements[i]
            replace_run(self.document.runs[i], _render(tree, english))
        return serialise(self.document)


def translated(document: HtmlDocument, result: TranslatedDocument) -> TranslatedDocument:
    """The translation put back into the document: `html` filled in, each paragraph's locator set, and
    MARKUP_PLACED on the sentences whose inline markup was placed by position."""
    translation = HtmlTranslation(document)
    paragraphs = tuple(translation.paragraph(p) for p in result.paragraphs)
    return replace(result, paragraphs=paragraphs, html=translation.finish(paragraphs))
