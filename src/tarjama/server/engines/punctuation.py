"""Moses punctuation normalisation, as OPUS-MT's training data had it before SentencePiece.

The rules are sacremoses' `MosesPunctNormalizer(lang)` (what transformers' MarianTokenizer sets up
as `normalize`), applied in the same order with the same results (a test compares them), but
compiled once and skipped when the text has none of the characters they need: most news sentences
need none, and running some thirty `re.sub`s on every sentence slowed the event loop (fuzz test).
"""

from __future__ import annotations

import re

# Every rule needs one of these characters, or a run of two spaces, to match (checked at start-up).
TRIGGERS = "\r()%:;`'\"„“”–—´‘’‚…«»\u00a0"
_CLASSES = re.compile(r"\[[^\]]*\]|\\[dsSwWg]<?\d*>?|\\.")


def _escaped_literal(match: re.Match[str]) -> str:
    """What a regex escape or class stands for, as far as the trigger check goes: `\\(` is "(",
    `\\r` a carriage return; classes and `\\d`-style escapes count for nothing."""
    token = match.group()
    if len(token) != 2:
        return ""
    return {"r": "\r", "n": "\n", "t": "\t"}.get(token[1], token[1])


class PunctNormalizer:
    """`normalize(text)` equals sacremoses' MosesPunctNormalizer(lang).normalize(text)."""

    def __init__(self, lang: str) -> None:
        from sacremoses import MosesPunctNormalizer

        self._rules = []
        covered = True
        for pattern, replacement in MosesPunctNormalizer(lang).substitutions:
            # " +" -> " " changes only runs of two or more spaces; the same rule for them alone.
            pattern = " {2,}" if pattern == " +" else pattern
            self._rules.append((re.compile(pattern), replacement))
            literal = _CLASSES.sub(_escaped_literal, pattern)
            covered &= pattern == " {2,}" or any(c in TRIGGERS for c in literal)
        # A rule outside TRIGGERS (a future sacremoses) turns the shortcut off rather than skip it.
        self._trigger = re.compile(f"[{re.escape(TRIGGERS)}]|  ") if covered else None

    def normalize(self, text: str) -> str:
        if not text:
            return ""
        if self._trigger is not None and self._trigger.search(text) is None:
            return text.strip()  # no rule can match; sacremoses strips what it returns
        for pattern, replacement in self._rules:
            text = pattern.sub(replacement, text)
        return text.strip()
