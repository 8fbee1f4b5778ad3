from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SummaryLength(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUMMARY_LENGTH_UNSPECIFIED: _ClassVar[SummaryLength]
    SHORT: _ClassVar[SummaryLength]
    MEDIUM: _ClassVar[SummaryLength]
    LONG: _ClassVar[SummaryLength]
SUMMARY_LENGTH_UNSPECIFIED: SummaryLength
SHORT: SummaryLength
MEDIUM: SummaryLength
LONG: SummaryLength

class TranslateRequest(_message.Message):
    __slots__ = ("id", "text", "paragraphs", "summarize", "options", "html")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    SUMMARIZE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    paragraphs: _containers.RepeatedScalarFieldContainer[str]
    summarize: bool
    options: TranslateOptions
    html: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., paragraphs: _Optional[_Iterable[str]] = ..., summarize: _Optional[bool] = ..., options: _Optional[_Union[TranslateOptions, _Mapping]] = ..., html: _Optional[str] = ...) -> None: ...

class TranslateOptions(_message.Message):
    __slots__ = ("terms", "strip_diacritics", "summary_length", "summary_sentences", "extract_article", "model", "glossary_id")
    class TermsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TERMS_FIELD_NUMBER: _ClassVar[int]
    STRIP_DIACRITICS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_ARTICLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    GLOSSARY_ID_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.ScalarMap[str, str]
    strip_diacritics: bool
    summary_length: SummaryLength
    summary_sentences: int
    extract_article: bool
    model: str
    glossary_id: str
    def __init__(self, terms: _Optional[_Mapping[str, str]] = ..., strip_diacritics: _Optional[bool] = ..., summary_length: _Optional[_Union[SummaryLength, str]] = ..., summary_sentences: _Optional[int] = ..., extract_article: _Optional[bool] = ..., model: _Optional[str] = ..., glossary_id: _Optional[str] = ...) -> None: ...

class NameVariant(_message.Message):
    __slots__ = ("source", "renderings")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RENDERINGS_FIELD_NUMBER: _ClassVar[int]
    source: str
    renderings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source: _Optional[str] = ..., renderings: _Optional[_Iterable[str]] = ...) -> None: ...

class Extraction(_message.Message):
    __slots__ = ("title", "author", "date", "dropped")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    title: str
    author: str
    date: str
    dropped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, title: _Optional[str] = ..., author: _Optional[str] = ..., date: _Optional[str] = ..., dropped: _Optional[_Iterable[str]] = ...) -> None: ...

class TranslateResponse(_message.Message):
    __slots__ = ("id", "paragraphs", "summary", "info", "terms", "html", "extraction")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    paragraphs: _containers.RepeatedCompositeFieldContainer[Paragraph]
    summary: Summary
    info: ResponseInfo
    terms: _containers.RepeatedCompositeFieldContainer[TermReport]
    html: str
    extraction: Extraction
    def __init__(self, id: _Optional[str] = ..., paragraphs: _Optional[_Iterable[_Union[Paragraph, _Mapping]]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., info: _Optional[_Union[ResponseInfo, _Mapping]] = ..., terms: _Optional[_Iterable[_Union[TermReport, _Mapping]]] = ..., html: _Optional[str] = ..., extraction: _Optional[_Union[Extraction, _Mapping]] = ...) -> None: ...

class TranslateStreamResponse(_message.Message):
    __slots__ = ("id", "paragraphs", "done", "summary", "info", "terms", "extraction", "html")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    id: str
    paragraphs: _containers.RepeatedCompositeFieldContainer[Paragraph]
    done: bool
    summary: Summary
    info: ResponseInfo
    terms: _containers.RepeatedCompositeFieldContainer[TermReport]
    extraction: Extraction
    html: str
    def __init__(self, id: _Optional[str] = ..., paragraphs: _Optional[_Iterable[_Union[Paragraph, _Mapping]]] = ..., done: _Optional[bool] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., info: _Optional[_Union[ResponseInfo, _Mapping]] = ..., terms: _Optional[_Iterable[_Union[TermReport, _Mapping]]] = ..., extraction: _Optional[_Union[Extraction, _Mapping]] = ..., html: _Optional[str] = ...) -> None: ...

class TermReport(_message.Message):
    __slots__ = ("source", "target", "occurrences", "kept", "expanded")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OCCURRENCES_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    EXPANDED_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    occurrences: int
    kept: bool
    expanded: int
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., occurrences: _Optional[int] = ..., kept: _Optional[bool] = ..., expanded: _Optional[int] = ...) -> None: ...

class Paragraph(_message.Message):
    __slots__ = ("index", "source", "translation", "sentences", "locator")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    LOCATOR_FIELD_NUMBER: _ClassVar[int]
    index: int
    source: str
    translation: str
    sentences: _containers.RepeatedCompositeFieldContainer[Sentence]
    locator: str
    def __init__(self, index: _Optional[int] = ..., source: _Optional[str] = ..., translation: _Optional[str] = ..., sentences: _Optional[_Iterable[_Union[Sentence, _Mapping]]] = ..., locator: _Optional[str] = ...) -> None: ...

class Sentence(_message.Message):
    __slots__ = ("source", "translation", "source_start", "source_end", "flags", "confidence", "source_tokens")
    class Flag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FLAG_UNSPECIFIED: _ClassVar[Sentence.Flag]
        SPLIT: _ClassVar[Sentence.Flag]
        PROTECTED_RESTORED: _ClassVar[Sentence.Flag]
        PLACEHOLDER_LOST: _ClassVar[Sentence.Flag]
        PASSTHROUGH: _ClassVar[Sentence.Flag]
        REPETITION: _ClassVar[Sentence.Flag]
        LENGTH_RATIO: _ClassVar[Sentence.Flag]
        UNTRANSLATED_ARABIC: _ClassVar[Sentence.Flag]
        EMPTY: _ClassVar[Sentence.Flag]
        OUTPUT_CAPPED: _ClassVar[Sentence.Flag]
        TERM_LOST: _ClassVar[Sentence.Flag]
        NUMBER_MISMATCH: _ClassVar[Sentence.Flag]
        BOILERPLATE: _ClassVar[Sentence.Flag]
        MARKUP_PLACED: _ClassVar[Sentence.Flag]
        NAME_VARIANT: _ClassVar[Sentence.Flag]
        TERM_EXPANDED: _ClassVar[Sentence.Flag]
    FLAG_UNSPECIFIED: Sentence.Flag
    SPLIT: Sentence.Flag
    PROTECTED_RESTORED: Sentence.Flag
    PLACEHOLDER_LOST: Sentence.Flag
    PASSTHROUGH: Sentence.Flag
    REPETITION: Sentence.Flag
    LENGTH_RATIO: Sentence.Flag
    UNTRANSLATED_ARABIC: Sentence.Flag
    EMPTY: Sentence.Flag
    OUTPUT_CAPPED: Sentence.Flag
    TERM_LOST: Sentence.Flag
    NUMBER_MISMATCH: Sentence.Flag
    BOILERPLATE: Sentence.Flag
    MARKUP_PLACED: Sentence.Flag
    NAME_VARIANT: Sentence.Flag
    TERM_EXPANDED: Sentence.Flag
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRANSLATION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_START_FIELD_NUMBER: _ClassVar[int]
    SOURCE_END_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    source: str
    translation: str
    source_start: int
    source_end: int
    flags: _containers.RepeatedScalarFieldContainer[Sentence.Flag]
    confidence: float
    source_tokens: int
    def __init__(self, source: _Optional[str] = ..., translation: _Optional[str] = ..., source_start: _Optional[int] = ..., source_end: _Optional[int] = ..., flags: _Optional[_Iterable[_Union[Sentence.Flag, str]]] = ..., confidence: _Optional[float] = ..., source_tokens: _Optional[int] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("text", "sentences", "method", "model")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    sentences: _containers.RepeatedCompositeFieldContainer[SummarySentence]
    method: str
    model: str
    def __init__(self, text: _Optional[str] = ..., sentences: _Optional[_Iterable[_Union[SummarySentence, _Mapping]]] = ..., method: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class SummarySentence(_message.Message):
    __slots__ = ("text", "paragraphs", "score", "unsupported")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_FIELD_NUMBER: _ClassVar[int]
    text: str
    paragraphs: _containers.RepeatedScalarFieldContainer[int]
    score: float
    unsupported: bool
    def __init__(self, text: _Optional[str] = ..., paragraphs: _Optional[_Iterable[int]] = ..., score: _Optional[float] = ..., unsupported: _Optional[bool] = ...) -> None: ...

class SummarizeRequest(_message.Message):
    __slots__ = ("id", "text", "paragraphs", "length", "sentences")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    paragraphs: _containers.RepeatedScalarFieldContainer[str]
    length: SummaryLength
    sentences: int
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., paragraphs: _Optional[_Iterable[str]] = ..., length: _Optional[_Union[SummaryLength, str]] = ..., sentences: _Optional[int] = ...) -> None: ...

class SummarizeResponse(_message.Message):
    __slots__ = ("id", "summary", "timings")
    ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    summary: Summary
    timings: Timings
    def __init__(self, id: _Optional[str] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ...) -> None: ...

class ResponseInfo(_message.Message):
    __slots__ = ("model", "decoding", "timings", "sentences", "source_tokens", "output_tokens", "cached_sentences", "flag_counts", "name_variants")
    class FlagCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DECODING_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    FLAG_COUNTS_FIELD_NUMBER: _ClassVar[int]
    NAME_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    decoding: DecodingSettings
    timings: Timings
    sentences: int
    source_tokens: int
    output_tokens: int
    cached_sentences: int
    flag_counts: _containers.ScalarMap[str, int]
    name_variants: _containers.RepeatedCompositeFieldContainer[NameVariant]
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ..., decoding: _Optional[_Union[DecodingSettings, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., sentences: _Optional[int] = ..., source_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_sentences: _Optional[int] = ..., flag_counts: _Optional[_Mapping[str, int]] = ..., name_variants: _Optional[_Iterable[_Union[NameVariant, _Mapping]]] = ...) -> None: ...

class SegmentRequest(_message.Message):
    __slots__ = ("id", "text", "paragraphs")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    paragraphs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., paragraphs: _Optional[_Iterable[str]] = ...) -> None: ...

class SegmentResponse(_message.Message):
    __slots__ = ("id", "paragraphs", "source_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    paragraphs: _containers.RepeatedCompositeFieldContainer[Paragraph]
    source_tokens: int
    def __init__(self, id: _Optional[str] = ..., paragraphs: _Optional[_Iterable[_Union[Paragraph, _Mapping]]] = ..., source_tokens: _Optional[int] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("total_ms", "translate_ms", "summarize_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATE_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARIZE_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    translate_ms: float
    summarize_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., translate_ms: _Optional[float] = ..., summarize_ms: _Optional[float] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("server_version", "models", "decoding", "limits", "stats", "parallelism")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DECODING_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    decoding: DecodingSettings
    limits: Limits
    stats: ServerStats
    parallelism: Parallelism
    def __init__(self, server_version: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., decoding: _Optional[_Union[DecodingSettings, _Mapping]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., stats: _Optional[_Union[ServerStats, _Mapping]] = ..., parallelism: _Optional[_Union[Parallelism, _Mapping]] = ...) -> None: ...

class Parallelism(_message.Message):
    __slots__ = ("workers", "threads_per_worker", "max_batch_size", "max_batch_tokens", "device", "device_indices", "chosen_by")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    THREADS_PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_INDICES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_BY_FIELD_NUMBER: _ClassVar[int]
    workers: int
    threads_per_worker: int
    max_batch_size: int
    max_batch_tokens: int
    device: str
    device_indices: _containers.RepeatedScalarFieldContainer[int]
    chosen_by: str
    def __init__(self, workers: _Optional[int] = ..., threads_per_worker: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_batch_tokens: _Optional[int] = ..., device: _Optional[str] = ..., device_indices: _Optional[_Iterable[int]] = ..., chosen_by: _Optional[str] = ...) -> None: ...

class ServerStats(_message.Message):
    __slots__ = ("requests", "batches", "batched_sentences", "batch_sizes", "source_tokens", "padded_source_tokens", "output_tokens", "cache_hits", "cache_misses", "queued_tokens", "overloaded", "shed", "delivered_sentences")
    class BatchSizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    BATCHED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PADDED_SOURCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    QUEUED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OVERLOADED_FIELD_NUMBER: _ClassVar[int]
    SHED_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    requests: int
    batches: int
    batched_sentences: int
    batch_sizes: _containers.ScalarMap[int, int]
    source_tokens: int
    padded_source_tokens: int
    output_tokens: int
    cache_hits: int
    cache_misses: int
    queued_tokens: int
    overloaded: int
    shed: int
    delivered_sentences: int
    def __init__(self, requests: _Optional[int] = ..., batches: _Optional[int] = ..., batched_sentences: _Optional[int] = ..., batch_sizes: _Optional[_Mapping[int, int]] = ..., source_tokens: _Optional[int] = ..., padded_source_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_misses: _Optional[int] = ..., queued_tokens: _Optional[int] = ..., overloaded: _Optional[int] = ..., shed: _Optional[int] = ..., delivered_sentences: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("role", "id", "revision", "path", "engine", "device", "compute_type", "name", "is_default", "parallelism")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    role: str
    id: str
    revision: str
    path: str
    engine: str
    device: str
    compute_type: str
    name: str
    is_default: bool
    parallelism: Parallelism
    def __init__(self, role: _Optional[str] = ..., id: _Optional[str] = ..., revision: _Optional[str] = ..., path: _Optional[str] = ..., engine: _Optional[str] = ..., device: _Optional[str] = ..., compute_type: _Optional[str] = ..., name: _Optional[str] = ..., is_default: _Optional[bool] = ..., parallelism: _Optional[_Union[Parallelism, _Mapping]] = ...) -> None: ...

class DecodingSettings(_message.Message):
    __slots__ = ("beam_size", "max_output_tokens", "max_output_ratio", "max_output_offset")
    BEAM_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    beam_size: int
    max_output_tokens: int
    max_output_ratio: float
    max_output_offset: int
    def __init__(self, beam_size: _Optional[int] = ..., max_output_tokens: _Optional[int] = ..., max_output_ratio: _Optional[float] = ..., max_output_offset: _Optional[int] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_characters", "max_paragraphs", "max_message_bytes", "max_glossary_terms", "max_term_characters", "max_id_characters", "max_deadline_s", "max_http_connections", "http_header_timeout_s", "http_body_timeout_s", "max_glossaries", "max_glossary_name_characters")
    MAX_CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_PARAGRAPHS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_GLOSSARY_TERMS_FIELD_NUMBER: _ClassVar[int]
    MAX_TERM_CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_ID_CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    MAX_HTTP_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    HTTP_HEADER_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    HTTP_BODY_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    MAX_GLOSSARIES_FIELD_NUMBER: _ClassVar[int]
    MAX_GLOSSARY_NAME_CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    max_characters: int
    max_paragraphs: int
    max_message_bytes: int
    max_glossary_terms: int
    max_term_characters: int
    max_id_characters: int
    max_deadline_s: float
    max_http_connections: int
    http_header_timeout_s: float
    http_body_timeout_s: float
    max_glossaries: int
    max_glossary_name_characters: int
    def __init__(self, max_characters: _Optional[int] = ..., max_paragraphs: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., max_glossary_terms: _Optional[int] = ..., max_term_characters: _Optional[int] = ..., max_id_characters: _Optional[int] = ..., max_deadline_s: _Optional[float] = ..., max_http_connections: _Optional[int] = ..., http_header_timeout_s: _Optional[float] = ..., http_body_timeout_s: _Optional[float] = ..., max_glossaries: _Optional[int] = ..., max_glossary_name_characters: _Optional[int] = ...) -> None: ...

class GlossaryEntry(_message.Message):
    __slots__ = ("source", "target")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class Glossary(_message.Message):
    __slots__ = ("glossary_id", "name", "source_lang", "target_lang", "entry_count", "creation_time", "entries", "created_by")
    GLOSSARY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANG_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANG_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    glossary_id: str
    name: str
    source_lang: str
    target_lang: str
    entry_count: int
    creation_time: str
    entries: _containers.RepeatedCompositeFieldContainer[GlossaryEntry]
    created_by: str
    def __init__(self, glossary_id: _Optional[str] = ..., name: _Optional[str] = ..., source_lang: _Optional[str] = ..., target_lang: _Optional[str] = ..., entry_count: _Optional[int] = ..., creation_time: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[GlossaryEntry, _Mapping]]] = ..., created_by: _Optional[str] = ...) -> None: ...

class CreateGlossaryRequest(_message.Message):
    __slots__ = ("name", "entries", "source_lang", "target_lang")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_LANG_FIELD_NUMBER: _ClassVar[int]
    TARGET_LANG_FIELD_NUMBER: _ClassVar[int]
    name: str
    entries: _containers.RepeatedCompositeFieldContainer[GlossaryEntry]
    source_lang: str
    target_lang: str
    def __init__(self, name: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[GlossaryEntry, _Mapping]]] = ..., source_lang: _Optional[str] = ..., target_lang: _Optional[str] = ...) -> None: ...

class ListGlossariesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGlossariesResponse(_message.Message):
    __slots__ = ("glossaries",)
    GLOSSARIES_FIELD_NUMBER: _ClassVar[int]
    glossaries: _containers.RepeatedCompositeFieldContainer[Glossary]
    def __init__(self, glossaries: _Optional[_Iterable[_Union[Glossary, _Mapping]]] = ...) -> None: ...

class GetGlossaryRequest(_message.Message):
    __slots__ = ("glossary_id", "include_entries")
    GLOSSARY_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    glossary_id: str
    include_entries: bool
    def __init__(self, glossary_id: _Optional[str] = ..., include_entries: _Optional[bool] = ...) -> None: ...

class DeleteGlossaryRequest(_message.Message):
    __slots__ = ("glossary_id",)
    GLOSSARY_ID_FIELD_NUMBER: _ClassVar[int]
    glossary_id: str
    def __init__(self, glossary_id: _Optional[str] = ...) -> None: ...

class DeleteGlossaryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
