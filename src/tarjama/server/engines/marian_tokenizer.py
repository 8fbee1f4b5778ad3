"""The Marian (opus-mt) tokenizer without transformers: sentencepiece plus the checkpoint's vocab.json.

Source text is first normalised as OPUS-MT's training data was (Moses punctuation rules for the
source language, `punctuation.py`); only what the model reads changes: the echoed source and its
offsets are the client's text. Pieces are exactly those of transformers' MarianTokenizer on its own
`normalize()`d text (a test checks it on FLORES), without importing torch through transformers,
which saves about 230 MB of RSS. Both engines tokenise here, so they read the same pieces.
"""

from __future__ import annotations

import json
from pathlib import Path

from .punctuation import PunctNormalizer


class MarianTokenizer:
    """Source text → pieces ending in </s>; target pieces → text."""

    def __init__(self, model_path: str) -> None:
        import sentencepiece as spm

        directory = Path(model_path)
        config_path = directory / "tokenizer_config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        self.eos = str(config.get("eos_token") or "</s>")
        self.unk = str(config.get("unk_token") or "<unk>")
        self.pad = str(config.get("pad_token") or "<pad>")
        self.vocab: dict[str, int] = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        self._pieces_of = {i: p for p, i in self.vocab.items()}
        target = directory / "target.spm"
        self._source = spm.SentencePieceProcessor(model_file=str(directory / "source.spm"))
        self._target = spm.SentencePieceProcessor(
            model_file=str(target if target.is_file() else directory / "source.spm")
        )
        self.eos_id = self.vocab[self.eos]
        self.pad_id = self.vocab[self.pad]
        # opus-mt checkpoints name their source language; Tarjama's is Arabic.
        self._normalizer = PunctNormalizer(str(config.get("source_lang") or "ar"))

    def tokenize(self, texts: list[str]) -> list[tuple[str, ...]]:
        vocab, unk, normalize = self.vocab, self.unk, self._normalizer.normalize
        return [
            tuple(p if p in vocab else unk for p in self._source.encode(normalize(text), out_type=str)) + (self.eos,)
            for text in texts
        ]

    def ids(self, pieces: tuple[str, ...] | list[str]) -> list[int]:
        return [self.vocab.get(p, self.vocab[self.unk]) for p in pieces]

    def pieces(self, ids: list[int]) -> list[str]:
        return [self._pieces_of.get(i, self.unk) for i in ids]

    def detokenize(self, pieces: list[str]) -> str:
        # As transformers does: special pieces are kept as written, the rest decoded by the target model.
        out: list[str] = []
        run: list[str] = []
        for piece in pieces:
            if piece in (self.eos, self.pad):
                continue
            if piece == self.unk:
                out.append(self._target.decode_pieces(run) + f" {piece} ")
                run = []
            else:
                run.append(piece)
        out.append(self._target.decode_pieces(run))
        return "".join(out).replace("\u2581", " ").strip()
