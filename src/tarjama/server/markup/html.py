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

import bisect
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any

import lxml.etree as etree
import lxml.html

from ..document import TranslatedDocument, TranslatedParagraph
from ..errors import InvalidRequest
from ..text.flags import Flag
from ..text.segmentation import count_arabic, has_arabic

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
# A long CMS article has a few thousand elements. The work per element is small, but each is a few
# Python objects, and past this many the collector's full passes over them (which hold the GIL) were
# seen to delay health checks by half a second.
MAX_ELEMENTS = 20_000
_SPACE = re.compile(r"\s+")
# A DOCTYPE's internal subset (`<!DOCTYPE html [ <!ENTITY x "y"> ]>`): libxml2's HTML parser reads none
# (nor do browsers); it ended the doctype at the subset's first ">" and showed the rest, "]>" included,
# as text. Removed before parsing, so its entities are never declared, let alone expanded. Each
# alternative starts with its own character, so a subset with no end cannot make the match backtrack.
_DOCTYPE = re.compile(r"""<!doctype\b(?:[^>\["']|"[^"]*"|'[^']*')*""", re.IGNORECASE)
_INTERNAL_SUBSET = re.compile(r"""\[(?:[^\]"'<]|"[^"]*"|'[^']*'|<!--(?:[^-]|-(?!->))*-->|<(?!!--))*\]\s*>""", re.S)
MAX_INTERNAL_SUBSET = 16 * 1024  # characters searched for its end (a regex match holds the GIL)


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
    locator: str = ""
    text: str = ""  # set by `done()`; while the run is read, its pieces (joined once, not re-copied)
    wrappers: list[Wrapper] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    length: int = 0
    ends_in_space: bool = True  # (at the start: leading white space is dropped)

    def add(self, text: str | None) -> None:
        """Append text with white space collapsed (offsets are in the collapsed text the model sees)."""
        if not text:
            return
        collapsed = _SPACE.sub(" ", text)
        if self.ends_in_space and collapsed.startswith(" "):
            collapsed = collapsed[1:]
        if collapsed:
            self.pieces.append(collapsed)
            self.length += len(collapsed)
            self.ends_in_space = collapsed.endswith(" ")

    def done(self) -> None:
        self.text = "".join(self.pieces).rstrip()
        self.pieces = []


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


def parse_html(html: str, max_paragraphs: int = 1_000_000) -> HtmlDocument:
    """The document's translatable paragraphs; raises InvalidRequest for markup that cannot be used.

    Linear in the document: one walk that does not enter untouched subtrees, each element's children
    read once, and locators computed only for what is translated (hostile markup, such as 100,000
    sibling elements, must not make any step quadratic)."""
    whole = re.search(r"<\s*(?:!doctype|html|body)\b", html[:4096], re.IGNORECASE) is not None
    parser = _parser()
    if whole:
        html = without_internal_subset(html)
    try:
        if whole:
            root = lxml.html.document_fromstring(html, parser=parser)
        else:
            check_fragment_ends(html)
            root = lxml.html.fragment_fromstring(html, create_parent="div", parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise InvalidRequest(f"html: cannot be parsed ({exc})") from None
    depth, elements = shape_of(root)
    if depth >= MAX_DEPTH:
        raise InvalidRequest(f"html: elements are nested {MAX_DEPTH} or more deep; this server accepts less")
    if elements > MAX_ELEMENTS:
        raise InvalidRequest(f"html: it has {elements} elements; this server accepts at most {MAX_ELEMENTS}")
    # A fatal error is libxml2 giving up part way (a limit): what follows it is missing from the tree, and
    # answering OK would drop it without a word.
    fatal = next((e for e in parser.error_log if e.level == etree.ErrorLevels.FATAL), None)
    if fatal is not None:
        raise InvalidRequest(f"html: the parser stopped at line {fatal.line}, column {fatal.column} "
                             f"({fatal.message.strip()[:200]}); nothing after it could be translated")  # fmt: skip
    # libxml2 reports an HTML 4.0 doctype for a page that has none: only the page's own is written back.
    has_doctype = _DOCTYPE.search(html, 0, 4096) is not None
    doctype = root.getroottree().docinfo.doctype if whole and has_doctype else ""
    check_nothing_dropped(html, root, doctype)
    check_foreign_content(root)
    locate = Locator(root)
    runs: list[Run] = []
    attributes: list[AttributeUnit] = []
    stack = [root]
    while stack:
        element = stack.pop()
        if untouched(element):
            continue  # nor anything inside it
        for name in TRANSLATED_ATTRIBUTES:
            value = element.get(name)
            if value and has_arabic(value):
                attributes.append(AttributeUnit(element, name, f"{locate(element)}@{name}", value))
        if element.tag not in INLINE:  # an inline element's text belongs to the run around it
            runs.extend(runs_of(element, locate))
        if len(runs) + len(attributes) > max_paragraphs:
            raise InvalidRequest(
                f"the html has more than {max_paragraphs} blocks to translate, the most this server accepts"
            )
        stack.extend(reversed(element))  # document order
    if not runs and not attributes:
        raise InvalidRequest("html: there is no Arabic text to translate in it")
    return HtmlDocument(root, whole, doctype or "", runs, attributes)


def check_nothing_dropped(html: str, root: etree._Element, doctype: str) -> None:
    """Refuse markup from which libxml2 dropped Arabic text without an error: it discards whatever comes
    after `</html>`, and in a fragment after `</body>` (`<p>…</p></body><p>…</p>`), and answering OK would
    lose that part of the story. Every Arabic letter of the input is somewhere in the tree (text, tails,
    attributes, comments; a character reference only adds letters), so fewer letters there means loss. What
    libxml2 keeps after `</html>` it puts in a second root element, which is never written out: not
    counted either."""
    if any(isinstance(node.tag, str) for node in root.itersiblings()):  # what followed </html>, of any script
        raise InvalidRequest(f"html: it has content after </html>, which the parser drops: {INSIDE_THE_BODY}")
    kept = count_arabic(doctype)
    for top in (*around(root, preceding=True), root, *around(root)):
        for node in top.iter():  # elements, comments and processing instructions
            kept += count_arabic(node.text or "") + count_arabic(node.tail or "")
            if isinstance(node.tag, str):
                kept += sum(count_arabic(name) + count_arabic(value) for name, value in node.attrib.items())
    given = count_arabic(html)
    if kept < given:
        raise InvalidRequest(
            f"html: the parser dropped {given - kept} of its {given} Arabic letters (text after </body> or "
            f"</html> is discarded): {INSIDE_THE_BODY}"
        )


INSIDE_THE_BODY = "put all of the article inside the body"
_BODY_OR_HTML_END = re.compile(r"</\s*(?:body|html)\s*>", re.IGNORECASE)


def check_fragment_ends(html: str) -> None:
    """A fragment with a </body> or </html> end tag: libxml2 drops whatever follows it (a figure, a photo
    credit, in any script) without an error, so anything but white space after it is refused."""
    end = _BODY_OR_HTML_END.search(html)
    if end is not None and _BODY_OR_HTML_END.sub("", html[end.start() :]).strip():
        raise InvalidRequest(f"html: it has content after </body> or </html>, which the parser drops: {INSIDE_THE_BODY}")  # noqa: E501


# In a browser, markup inside <svg> and <math> is foreign content: <style>, <script> and <title> there are
# ordinary elements whose text holds tags and comments, and <![CDATA[ ... ]]> is a CDATA section.
# libxml2 knows no foreign content: it reads such a <style> as raw text up to "</style>", a CDATA section
# as a bogus comment that ends at the first ">", and so on. Its tree then differs from the browser's, and
# writing it back turns what the browser saw as an attribute value, a comment or text into live markup
# (`<svg><title><!--</title><img onerror=...>--></title></svg>`). Such a subtree is refused.
FOREIGN = frozenset(("svg", "math"))
# Text that libxml2 kept as characters but a browser in foreign content reads as a tag or comment.
_MARKUP_IN_TEXT = re.compile(r"<[A-Za-z/!?]")


def check_foreign_content(root: etree._Element) -> None:
    """Refuse an <svg> or <math> whose content libxml2 read differently from a browser: text in its tree
    that looks like markup (it was markup to a browser), or a CDATA section. One walk over the tree."""
    stack: list[tuple[etree._Element, str]] = [(root, "")]
    while stack:
        element, foreign = stack.pop()
        if foreign:
            comment = element.tag is etree.Comment and (element.text or "").startswith("[CDATA[")
            if comment or _MARKUP_IN_TEXT.search(element.text or "") or _MARKUP_IN_TEXT.search(element.tail or ""):
                raise InvalidRequest(
                    f"html: <{foreign}> holds {'a CDATA section' if comment else 'text'} a browser would read "
                    f"as markup (this parser reads it as text); write it with &lt; or leave it out"
                )
        elif isinstance(element.tag, str) and element.tag in FOREIGN:
            foreign = element.tag
            if _MARKUP_IN_TEXT.search(element.text or ""):
                raise InvalidRequest(
                    f"html: <{foreign}> holds text a browser would read as markup (this parser reads it "
                    "as text); write it with &lt; or leave it out"
                )
            stack.extend((child, foreign) for child in element)
            continue
        stack.extend((child, foreign) for child in element)


def around(root: etree._Element, preceding: bool = False) -> list[etree._Element]:
    """The comments and processing instructions beside a document's root element, which are written
    back with it (a comment before <html> is the page's, not to be dropped)."""
    return [node for node in root.itersiblings(preceding=preceding) if not isinstance(node.tag, str)]


_parsers = threading.local()


def _parser() -> lxml.html.HTMLParser:
    """This thread's HTML parser (an lxml parser is used by one thread at a time). `huge_tree`: without it
    libxml2 emptied a text node, attribute or comment over 10,000,000 bytes and dropped everything after
    it, with no error. The html is already bounded by --max-message-bytes and the limits below, and
    libxml2's HTML parser loads no DTD, reads no internal subset and fetches nothing (no_network)."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = lxml.html.HTMLParser(huge_tree=True, no_network=True)
    return parser


def without_internal_subset(html: str) -> str:
    """`html` with its DOCTYPE's internal subset removed (`<!DOCTYPE html [ ... ]>` -> `<!DOCTYPE html>`)."""
    doctype = _DOCTYPE.search(html, 0, 4096)
    if doctype is None or not html.startswith("[", doctype.end()):
        return html
    subset = _INTERNAL_SUBSET.match(html, doctype.end(), doctype.end() + MAX_INTERNAL_SUBSET)
    if subset is None:
        raise InvalidRequest(
            f"html: the DOCTYPE's internal subset ([...]) does not end within {MAX_INTERNAL_SUBSET} characters"
        )
    return html[: doctype.end()].rstrip() + ">" + html[subset.end() :]


def shape_of(root: etree._Element) -> tuple[int, int]:
    """How deep the markup is nested, and how many nodes it has."""
    deepest, count, stack = 0, 0, [(root, 0)]
    while stack:
        element, depth = stack.pop()
        deepest, count = max(deepest, depth), count + 1
        stack.extend((child, depth + 1) for child in element)
    return deepest, count


class Locator:
    """CSS selectors of elements from the root, with each parent's children counted once."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.position: dict[etree._Element, int] = {}  # an element's place among its same-tag siblings
        self.counted: set[etree._Element] = set()
        self.cache: dict[etree._Element, str] = {root: ""}

    def __call__(self, element: etree._Element) -> str:
        if element in self.cache:
            return self.cache[element] or ":root"
        parent = element.getparent()
        if parent not in self.counted:
            self.counted.add(parent)
            seen: dict[str, int] = {}
            for child in parent:
                if isinstance(child.tag, str):
                    seen[child.tag] = seen.get(child.tag, 0) + 1
                    self.position[child] = seen[child.tag]
        above = self(parent) if parent is not self.root else ""
        own = f"{element.tag}:nth-of-type({self.position[element]})"
        self.cache[element] = f"{above} > {own}" if above else own
        return self.cache[element]


def runs_of(element: etree._Element, locate: Locator) -> list[Run]:
    """The element's runs of inline content with Arabic in them, split by its block (or untouched
    block-level) children."""
    runs: list[Run] = []
    current = Run(element, 0, 0, True)
    current.add(element.text)
    for index, child in enumerate(element):
        if isinstance(child.tag, str) and (child.tag in BLOCKS or child.tag in BLOCK_LEVEL_UNTOUCHED):
            runs.append(current)
            current = Run(element, index + 1, 0, False)
            current.add(child.tail)
            continue
        if current.count == 0:
            current.first = index
        current.count += 1
        _add_inline(current, child, 0)
        current.add(child.tail)
    runs.append(current)
    for run in runs:
        run.done()
    runs = [r for r in runs if r.text]
    kept = [r for r in runs if has_arabic(r.text)]
    if kept:
        base = locate(element)
        for n, run in enumerate(runs):
            run.locator = f"{base}~{n}" if len(runs) > 1 else base
    return kept


def _add_inline(run: Run, element: etree._Element, depth: int) -> None:
    start = run.length
    if untouched(element) or not isinstance(element.tag, str) or element.tag not in INLINE:
        run.wrappers.append(Wrapper(element, start, start, depth, keep_whole=True))
        if element.tag == "br":
            run.add(" ")  # a line break separates words (and sentences) for the model
        return
    wrapper = Wrapper(element, start, start, depth)
    run.wrappers.append(wrapper)
    run.add(element.text)
    for child in element:
        _add_inline(run, child, depth + 1)
        run.add(child.tail)
    wrapper.end = run.length


# -- putting the English back ---------------------------------------------------------------------


@dataclass
class SentenceSpan:
    """Where one sentence of a run sits in the source text and in the English text."""

    source_start: int
    source_end: int
    english_start: int
    english_end: int


def place(wrapper: Wrapper, source: str, english: str, sentence: SentenceSpan) -> tuple[int, int, bool]:
    """The English span for an inline element in its sentence, and whether it was placed by position."""
    text = source[wrapper.start : wrapper.end].strip()
    if text and not has_arabic(text):  # kept by the model as written (a protected span): anchored to it
        found = _as_words(english, text, sentence.english_start, sentence.english_end)
        if found >= 0:
            return found, found + len(text), False
    return _by_position(wrapper.start, sentence, english), _by_position(wrapper.end, sentence, english, end=True), True


ANCHOR_TRIES = 8  # occurrences of an element's text looked at for one on word boundaries (bounded work)


def _as_words(english: str, text: str, start: int, end: int) -> int:
    """Where `text` occurs in english[start:end] without cutting an English word (the "x" of
    `e<b>x</b>tra` must not wrap the x of "next"); -1 if not in its first ANCHOR_TRIES occurrences."""
    found = english.find(text, start, end)
    for _ in range(ANCHOR_TRIES):
        if found < 0 or not (_cuts_word(english, found) or _cuts_word(english, found + len(text))):
            return found
        found = english.find(text, found + 1, end)
    return -1


def _cuts_word(english: str, i: int) -> bool:
    """Whether a tag at offset i would sit inside a word (letters or digits on both sides)."""
    return 0 < i < len(english) and english[i - 1].isalnum() and english[i].isalnum()


def _by_position(offset: int, sentence: SentenceSpan, english: str, end: bool = False) -> int:
    """A source offset mapped to the nearest English word boundary at the same relative position."""
    length = max(1, sentence.source_end - sentence.source_start)
    ratio = min(1.0, max(0.0, (offset - sentence.source_start) / length))
    target = sentence.english_start + round(ratio * (sentence.english_end - sentence.english_start))
    target = max(sentence.english_start, min(target, sentence.english_end))
    # To a word boundary, searched in C (a 200,000-character "word" must not cost a Python loop each):
    # forward for an end, backward for a start.
    if end:
        if 0 < target < sentence.english_end and english[target - 1] != " ":
            space = english.find(" ", target, sentence.english_end)
            target = sentence.english_end if space < 0 else space
        return target
    space = english.rfind(" ", sentence.english_start, target)
    return sentence.english_start if space < 0 else space + 1


# A node of the tree of inline markup placed in a paragraph's English: its span ("start", "end"), its
# wrapper element ("wrapper"), its "children" and its "depth".
Node = dict[str, Any]


def fill(run: Run, english: str, sentences: list[SentenceSpan]) -> tuple[Node, set[int]]:
    """Where the run's markup goes in the English (a tree of spans, rendered by `_render` once the
    attributes are translated), and the sentences whose markup was placed by position."""
    placed: list[tuple[int, int, Wrapper]] = []
    estimated: set[int] = set()
    ends = [s.source_end for s in sentences]
    whole = SentenceSpan(0, len(run.text), 0, len(english))
    for wrapper in run.wrappers:
        index = min(bisect.bisect_right(ends, wrapper.start), len(sentences) - 1) if sentences else 0
        sentence = sentences[index] if sentences else whole
        if wrapper.keep_whole and wrapper.start == wrapper.end:
            position = _by_position(wrapper.start, sentence, english)
            placed.append((position, position, wrapper))
            continue
        start, end, by_position = place(wrapper, run.text, english, sentence)
        if by_position:
            estimated.add(index)
            if end <= start and wrapper.end > wrapper.start:  # it wrapped words: it wraps at least one
                following = english.find(" ", start + 1, sentence.english_end)
                end = sentence.english_end if following < 0 else following
        placed.append((start, max(start, end), wrapper))
    return _nest(english, placed), estimated


def _nest(english: str, placed: list[tuple[int, int, Wrapper]]) -> Node:
    """Nest the wrappers in document order, each kept inside its parent and after its previous sibling."""
    root: Node = {"start": 0, "end": len(english), "children": [], "depth": -1}
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


def _render(node: Node, english: str) -> list[etree._Element | str]:
    out: list[etree._Element | str] = []
    position = node["start"]
    for child in node["children"]:
        if child["start"] > position:
            out.append(english[position : child["start"]])
        wrapper: Wrapper = child["wrapper"]
        if wrapper.keep_whole:
            element = wrapper.element  # moved as it is; its tail was part of the run's text
            element.tail = None
        else:  # the original, with its (by now translated) attributes, refilled: every child of an inline
            # element is a wrapper of the run, put back by `_render(child)`. Not a fresh element: an
            # attribute name libxml2 accepts (`<b <b>` has one named "<b") is one lxml refuses to set.
            element = wrapper.element
            content = _render(child, english)
            element.tail = None
            del element[:]
            _append_content(element, content)
        out.append(element)
        position = max(position, child["end"])
    if node["end"] > position:
        out.append(english[position : node["end"]])
    return out


def _laid_out(content: list[etree._Element | str]) -> tuple[str, list[etree._Element]]:
    """Content as lxml holds it: the text before the first element, and the elements, each followed by
    its text as its tail."""
    leading: list[str] = []
    elements: list[etree._Element] = []
    for item in content:
        if isinstance(item, str):
            if elements:
                elements[-1].tail = (elements[-1].tail or "") + item
            else:
                leading.append(item)
        else:
            elements.append(item)
    return "".join(leading), elements


def _append_content(element: etree._Element, content: list[etree._Element | str]) -> None:
    leading, elements = _laid_out(content)
    element.text = leading or None
    element.extend(elements)  # emptied first: appended in one go, not inserted one by one


def replace_run(run: Run, content: list[etree._Element | str]) -> None:
    """Put the run's new content where its old text and inline children were (its trailing white
    space goes with them: the English ends the run). One slice assignment: a run of 100,000 elements
    must not be inserted one index at a time."""
    parent = run.parent
    leading, elements = _laid_out(content)
    parent[run.first : run.first + run.count] = elements
    if run.leading:
        parent.text = leading or None
    else:  # the run follows a block child: its text is that child's tail
        parent[run.first - 1].tail = leading or None


def serialise(document: HtmlDocument) -> str:
    if document.whole_document:
        root = document.root
        before = [lxml.html.tostring(node, encoding="unicode") for node in reversed(around(root, preceding=True))]
        after = [lxml.html.tostring(node, encoding="unicode") for node in around(root)]
        doctype = [document.doctype + "\n"] if document.doctype else []
        return "".join(doctype + before + [lxml.html.tostring(root, encoding="unicode")] + after)
    root = document.root
    # The fragment's leading text is a text node like any other: escaped as lxml escapes the rest (raw,
    # "&lt;img onerror=...&gt;" came back as a live <img>, and the model's "<extra_2888>" as a tag).
    inner = [escape(root.text or "", quote=False)] + [lxml.html.tostring(c, encoding="unicode") for c in root]
    return "".join(inner)


class HtmlTranslation:
    """Puts a document's translation back into it, paragraph by paragraph (a stream's order), then whole.

    `paragraph()` gives each translated paragraph its locator and MARKUP_PLACED flags as it comes;
    `finish()` writes the attributes, then the runs' English with their markup, and serialises."""

    def __init__(self, document: HtmlDocument) -> None:
        self.document = document
        self.placements: dict[int, tuple[Node, str]] = {}  # run index -> (markup tree, English)

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
        if self.document.whole_document:
            now_english(self.document.root)
        return serialise(self.document)


def now_english(root: etree._Element) -> None:
    """A whole page's <html> and <body> that said Arabic, right to left, now say English, left to right:
    a browser would otherwise lay the English out right to left and pick Arabic fonts and hyphenation."""
    for element in (root, root.find("body")):
        if element is None:
            continue
        if (element.get("lang") or "").lower().split("-")[0] == "ar":
            element.set("lang", "en")
        if (element.get("dir") or "").lower() == "rtl":
            element.set("dir", "ltr")


def translated(document: HtmlDocument, result: TranslatedDocument) -> TranslatedDocument:
    """The translation put back into the document: `html` filled in, each paragraph's locator set, and
    MARKUP_PLACED on the sentences whose inline markup was placed by position."""
    translation = HtmlTranslation(document)
    paragraphs = tuple(translation.paragraph(p) for p in result.paragraphs)
    return replace(result, paragraphs=paragraphs, html=translation.finish(paragraphs))
