"""The article of a page saved from a news site: headline, date, byline and body, without the page's
furniture (menus, font widgets, share buttons, related stories), and a list of what was dropped.

trafilatura does the extraction (a well-kept extractor, tuned on news pages); lxml lists the page's
text blocks so that what it left out can be reported, not silently lost. Used by Translate's
`options.extract_article` and the HTTP API's /v1/extract, both through `extract`, which runs it in a
process of its own (offload.ProcessLane). The page is held to markup/html.py's limits (at most 20,000
elements, nested less than 200 deep) on top of --max-message-bytes, and what is kept to Translate's.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from ..errors import DeadlineExceeded, FeatureUnavailable, InvalidRequest
from ..offload import ProcessLane
from .html import MAX_DEPTH, MAX_ELEMENTS, shape_of

BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td", "th", "blockquote", "figcaption", "dd", "dt",
          "div", "nav", "footer", "header", "aside", "section", "article", "figure", "main", "body")  # fmt: skip
SKIP = ("script", "style", "noscript", "template", "svg")
# One page at a time, two more waiting, past that RESOURCE_EXHAUSTED: a page at the size limits takes a
# few seconds of one core, and more at once would only share the same cores and make each one slower.
LANE = ProcessLane("saved-page extraction", workers=1, waiting=2)


@dataclass
class ExtractedArticle:
    title: str = ""
    author: str = ""
    date: str = ""
    body: list[str] = field(default_factory=list)  # the paragraphs after the headline
    dropped: list[str] = field(default_factory=list)  # the page's other text blocks, in page order

    @property
    def paragraphs(self) -> list[str]:
        """What is translated: the headline, the byline, the date, then the body."""
        return [line for line in (self.title, self.author, self.date) if line] + self.body


def extract_article(html: str) -> ExtractedArticle:
    """The article of a saved page; an empty body when the page has none (the caller says so).
    Raises InvalidRequest for a page over the HTML limits, FeatureUnavailable without trafilatura."""
    try:
        import trafilatura
    except ImportError as exc:  # said as it is: "needs X" for an X that is installed but broken misleads
        raise FeatureUnavailable(
            f"options.extract_article needs trafilatura on the server, which does not import "
            f"({' '.join(str(exc).split())[:200]}): pip install -c constraints.txt '.[server]' in the repository"
        ) from None
    check_size(html)
    found = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False, favor_precision=True)
    if found is None:
        return ExtractedArticle(dropped=page_blocks(html))
    values = found.as_dict() if hasattr(found, "as_dict") else dict(found)
    title = (values.get("title") or "").strip()
    body = [line.strip() for line in (values.get("text") or "").splitlines() if line.strip()]
    if body and body[0] == title:
        body = body[1:]  # the headline opens the text too
    article = ExtractedArticle(
        title=title, author=(values.get("author") or "").strip(), date=(values.get("date") or "").strip(), body=body
    )
    kept = kept_lines(article.paragraphs)
    article.dropped = [block for block in page_blocks(html) if block not in kept]
    return article


# The most one page may take in the lane, deadline or none: pages within the limits take a few seconds,
# and a page built to take longer must not hold the lane (and the pages waiting behind it) for long.
MAX_EXTRACTION_S = 30.0
# libxml2 (trafilatura's parser) empties a text node over 10,000,000 bytes and drops what follows it.
MAX_PAGE_BYTES = 10_000_000


async def extract(html: str, deadline: float | None) -> ExtractedArticle:
    """extract_article in the extraction lane's process; raises Overloaded past its queue."""
    if len(html) > MAX_PAGE_BYTES // 4 and len(html.encode("utf-8", "surrogatepass")) > MAX_PAGE_BYTES:
        raise InvalidRequest(f"html: saved pages are read up to {MAX_PAGE_BYTES} bytes (the extractor's parser "
                             "drops text past that); send the article's part of the page")  # fmt: skip
    return await LANE.run(deadline, extract_within, html, deadline_wall(deadline))


def deadline_wall(deadline: float | None) -> float:
    """A time.monotonic() deadline as wall-clock time, which the lane's process can read too."""
    left = MAX_EXTRACTION_S if deadline is None else min(MAX_EXTRACTION_S, deadline - time.monotonic())
    return time.time() + max(0.0, left)


def extract_within(html: str, until: float) -> ExtractedArticle:
    """In the lane's process: extract_article, stopped at `until` (wall clock), so that a page whose caller
    has gone (its deadline passed) gives its slot back instead of running to the end. The alarm interrupts
    Python code; a long C call (a regular expression over the page) delays it by at most that call."""
    left = until - time.time()
    if left <= 0:
        raise DeadlineExceeded("the deadline passed before the extraction started")

    def stop(signum: int, frame: object) -> None:
        raise DeadlineExceeded("the extraction ran past its deadline (or the server's limit for one page)")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, left)
    try:
        return extract_article(html)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def start_extraction() -> None:
    """Start the extraction process and its imports now, before SERVING, not on the first saved page."""
    LANE.start(warm=_imports)


def _imports() -> None:
    import lxml.html  # noqa: F401

    try:
        import trafilatura  # noqa: F401
    except ImportError:  # extract_article says so to the request that needs it
        pass


def kept_lines(paragraphs: list[str]) -> set[str]:
    """The kept article's lines as page_blocks writes blocks (white space collapsed), list items also
    without trafilatura's "- " and table rows ("| a | b |") also cell by cell: a page block is kept when
    it is one of these. A set, so that a page of 19,000 menu items is checked in linear time (looking
    each block up in the kept text took 32 s for a 3.5M-character article)."""
    kept: set[str] = set()
    for paragraph in paragraphs:
        line = " ".join(paragraph.split())
        kept.add(line)
        if line.startswith("- "):
            kept.add(line[2:])
        if line.startswith("|") and line.endswith("|"):
            kept.update(cell.strip() for cell in line[1:-1].split("|"))
    return kept


def check_size(html: str) -> None:
    """The limits HTML in, HTML out has (nesting, number of elements), for the same reasons."""
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError) as exc:
        raise InvalidRequest(f"html: cannot be parsed ({exc})") from None
    depth, elements = shape_of(root)
    if depth >= MAX_DEPTH or elements > MAX_ELEMENTS:
        raise InvalidRequest(
            f"html: the page has {elements} elements nested {depth} deep; this server accepts at most "
            f"{MAX_ELEMENTS} elements nested less than {MAX_DEPTH} deep"
        )


def page_blocks(html: str) -> list[str]:
    """The page's text, block by block (the innermost blocks that hold text), white space collapsed."""
    import lxml.html

    try:
        root = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return []
    for junk in list(root.iter(*SKIP)):
        junk.drop_tree()
    blocks: list[str] = []
    for element in root.iter(*BLOCKS):
        if any(child.tag in BLOCKS for child in element.iterdescendants()):
            continue  # an outer block: its inner ones are listed
        text = " ".join(element.text_content().split())
        if text and (not blocks or blocks[-1] != text):
            blocks.append(text)
    return blocks
