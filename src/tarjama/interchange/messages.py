"""Protobuf messages as JSON, one shape for every reader: the CLI's `--format json`, the HTTP API, bulk records."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message


def to_dict(message: Message) -> dict[str, Any]:
    """A response as proto3 JSON with the proto's field names, every field present."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
