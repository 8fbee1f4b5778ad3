"""Fuzzing the live server: 10,000 messages made from valid requests by mutation.

A seeded mutator (repeatable: the seed is in the failure message) flips bytes, truncates, inserts,
splices, adds unknown fields and wrong wire types, writes huge length prefixes and random enum
values, and mixes in pathological strings (no spaces, all punctuation, e-mail- and URL-like runs,
200,000 characters, glossaries whose targets contain their terms). Every answer must be a defined
status (never UNKNOWN or INTERNAL), health must answer within 100 ms throughout, nothing may be
logged as a traceback, and the server must translate correctly afterwards.

TARJAMA_FUZZ_MESSAGES and TARJAMA_FUZZ_SEED change the count and the seed.
"""

from __future__ import annotations

import collections
import os
import random
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tarjama.v1 import tarjama_pb2 as pb

from conftest import HealthMonitor, assert_still_translates, raw_call, varint, wire_field

pytestmark = pytest.mark.slow

MESSAGES = int(os.environ.get("TARJAMA_FUZZ_MESSAGES", "10000"))
SEED = int(os.environ.get("TARJAMA_FUZZ_SEED", "20261125"))
METHODS = ("Translate", "Segment", "Summarize", "GetInfo", "CreateGlossary", "ListGlossaries", "GetGlossary",
           "DeleteGlossary")  # fmt: skip
# Defined answers: the request was served, wrong, too big or too slow for its deadline, or names no
# stored glossary (RESOURCE_EXHAUSTED also once --max-glossaries are stored).
ALLOWED = {"OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "FAILED_PRECONDITION", "NOT_FOUND"}
BIG_MESSAGES = 6  # limit-size texts take seconds each; a handful is enough


def seeds(pairs: list[tuple[str, str]]) -> list[tuple[str, bytes]]:
    arabic = [a for a, _ in pairs]
    english = [e for _, e in pairs]
    options = [
        pb.TranslateOptions(),
        pb.TranslateOptions(terms={"مصر": "مصر", "الأمم المتحدة": "United Nations (الأمم المتحدة)"}),
        pb.TranslateOptions(summary_length=pb.SHORT, summary_sentences=3, strip_diacritics=True),
        pb.TranslateOptions(terms={"ـ": "-"}),
    ]
    out: list[tuple[str, bytes]] = []
    for i, text in enumerate(arabic[:10]):
        request = pb.TranslateRequest(id=f"fuzz-{i}", text=text, summarize=i % 2 == 0, options=options[i % 4])
        out.append(("Translate", request.SerializeToString()))
        out.append(("Translate", pb.TranslateRequest(paragraphs=[text, arabic[i + 1]]).SerializeToString()))
        out.append(("Segment", pb.SegmentRequest(text=text).SerializeToString()))
    out.append(("Summarize", pb.SummarizeRequest(text="\n".join(english[:8]), length=pb.LONG).SerializeToString()))
    out.append(("Summarize", pb.SummarizeRequest(paragraphs=english[:4], sentences=2).SerializeToString()))
    out.append(("GetInfo", pb.GetInfoRequest().SerializeToString()))
    # The stored glossaries' RPCs, and a Translate naming a stored glossary (mutated ids are NOT_FOUND).
    entries = [pb.GlossaryEntry(source="مصر", target="Egypt"), pb.GlossaryEntry(source="ـ", target="-")]
    out.append(("CreateGlossary", pb.CreateGlossaryRequest(name="fuzz", entries=entries[:1], source_lang="ar",
                                                           target_lang="en").SerializeToString()))  # fmt: skip
    out.append(("CreateGlossary", pb.CreateGlossaryRequest(name="fuzz", entries=entries).SerializeToString()))
    out.append(("ListGlossaries", pb.ListGlossariesRequest().SerializeToString()))
    an_id = "0b6e6f0e-8a4c-4a6e-9d55-6c1f3f3f3f3f"
    out.append(("GetGlossary", pb.GetGlossaryRequest(glossary_id=an_id, include_entries=True).SerializeToString()))
    out.append(("DeleteGlossary", pb.DeleteGlossaryRequest(glossary_id=an_id).SerializeToString()))
    glossary = pb.TranslateOptions(glossary_id=an_id)
    out.append(("Translate", pb.TranslateRequest(text=arabic[0], options=glossary).SerializeToString()))
    return out


def pathological(rng: random.Random) -> str:
    unit = rng.choice(["ب", "a", "!؟.،", "a@b.", "http://x.y/ب", "www.", "@#", "ab ب ", "\u200f\u0640", "."])
    return unit * rng.randint(1, 5000)


def big(rng: random.Random) -> bytes:
    unit = rng.choice(["ب", "a@b.", "!؟.،", "كلمة "])
    text = (unit * (190_000 // len(unit)))[:190_000] + "ب"
    return pb.TranslateRequest(text=text, options=pb.TranslateOptions(terms={"ب": "ب ب"})).SerializeToString()


def mutate(rng: random.Random, data: bytes, seeds_: list[tuple[str, bytes]]) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(11)
    if kind == 0 and data:  # flip bits
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        data = data[: rng.randint(0, len(data))]
    elif kind == 2:  # insert random bytes
        at = rng.randint(0, len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 16))
    elif kind == 3 and data:  # delete a range
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 8)]
    elif kind == 4:  # an unknown field of any wire type
        number = rng.choice([6, 7, 15, 99, 2**20, 2**29 - 1])
        wire = rng.randrange(8)
        data += varint(number << 3 | wire) + rng.randbytes(rng.randint(0, 12))
    elif kind == 5:  # a huge length prefix
        data += varint(rng.choice([2, 3, 5]) << 3 | 2) + varint(rng.choice([2**31, 2**62, 10**9])) + b"xyz"
    elif kind == 6:  # a known field with the wrong wire type
        data += varint(rng.randint(1, 5) << 3 | rng.choice([0, 1, 5])) + varint(rng.getrandbits(40)) + b"\0" * 8
    elif kind == 7:  # random enum values, negative ones included
        value = rng.choice([-1, 4, 99, 2**31 - 1, -(2**31)])
        data += wire_field(5, varint(3 << 3) + varint(value)) if rng.random() < 0.5 else varint(4 << 3) + varint(value)
    elif kind == 8:  # splice with another seed
        other = rng.choice(seeds_)[1]
        data = data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]
    elif kind == 9:  # a pathological string in text, paragraphs or a glossary entry
        text = pathological(rng).encode()
        which = rng.randrange(3)
        if which == 2:
            data += wire_field(5, wire_field(1, wire_field(1, text[:200]) + wire_field(2, text[:200] * 2)))
        else:
            data += wire_field(2 + which, text)
    else:  # invalid UTF-8 inside a string
        data += wire_field(rng.choice([1, 2, 3]), b"ok\xff\xfe" + rng.randbytes(3))
    return bytes(data)


def test_ten_thousand_mutated_messages_get_defined_answers(hardened_server, memorised_pairs) -> None:
    rng = random.Random(SEED)
    seeds_ = seeds(memorised_pairs)
    cases = []
    for k in range(MESSAGES):
        method, data = rng.choice(seeds_)
        if k % (MESSAGES // BIG_MESSAGES or 1) == 0:
            method, data = "Translate", big(rng)
        elif rng.random() < 0.9:
            data = mutate(rng, data, seeds_)
        if rng.random() < 0.1:
            method = rng.choice(METHODS)  # the wrong message for the method: parsed as another type
        cases.append((method, data))

    codes: collections.Counter[str] = collections.Counter()
    surprises: list[tuple[str, str, str]] = []
    with (
        HealthMonitor(hardened_server.address) as health,
        grpc.insecure_channel(
            hardened_server.address, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]
        ) as channel,
    ):

        def send(case: tuple[str, bytes]) -> None:
            code, details = raw_call(channel, case[0], case[1], timeout=60)
            codes[code.name] += 1
            if code.name not in ALLOWED:
                surprises.append((case[0], code.name, details[:120]))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(send, cases))

    print(f"\nfuzz: {MESSAGES} messages, seed {SEED}: {dict(codes)}; health worst {health.worst_s * 1000:.0f} ms")
    assert sum(codes.values()) == MESSAGES
    assert not surprises, f"seed {SEED}: {len(surprises)} undefined answers, e.g. {surprises[:3]}; all: {codes}"
    assert codes["OK"] > 100 and codes["INVALID_ARGUMENT"] > 1000, codes
    health.check("fuzz")
    log = hardened_server.log()
    assert "Traceback" not in log and "ERROR" not in log
    assert_still_translates(hardened_server.address, memorised_pairs)
