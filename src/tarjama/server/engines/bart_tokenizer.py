"""The BART/PEGASUS-style summariser's tokenizer on the `tokenizers` library alone, without transformers.

`from transformers import AutoTokenizer` imports torch, which would map libtorch (about 200 MB of
RSS) into the CTranslate2 server for nothing. This gives the same pieces, counts and text as
transformers' tokenizer (a test checks it on FLORES English): the checkpoint's tokenizer.json when
it has one, else byte-level BPE from vocab.json and merges.txt with `<s> … </s>` around the text.
"""

from __future__ import annotations

import json
from pathlib import Path


class BartTokenizer:
    """Text → pieces with `<s>` and `</s>`; pieces → text without special tokens."""

    def __init__(self, model_path: str) -> None:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

        directory = Path(model_path)
        if (directory / "tokenizer.json").is_file():
            self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        else:  # the checkpoint has the slow tokenizer's files: build what transformers converts them to
            vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
            bpe = models.BPE.from_file(str(directory / "vocab.json"), str(directory / "merges.txt"))
            tokenizer = Tokenizer(bpe)
            tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tokenizer.decoder = decoders.ByteLevel()
            tokenizer.post_processor = processors.RobertaProcessing(
                ("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]), add_prefix_space=False, trim_offsets=True
            )
            self._tokenizer = tokenizer
        specials = ("<s>", "</s>", "<pad>", "<unk>", "<mask>")
        self._special_ids = {i for i in (self._tokenizer.token_to_id(t) for t in specials) if i is not None}

    def count(self, texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(texts)]

    def pieces(self, text: str) -> list[str]:
        return self._tokenizer.encode(text).tokens

    def text(self, pieces: list[str]) -> str:
        ids = [self._tokenizer.token_to_id(p) for p in pieces]
        return self._tokenizer.decode([i for i in ids if i is not None and i not in self._special_ids])
