"""Who may call: bearer tokens from a file, checked before any work, reloaded on SIGHUP.

`--auth-tokens-file FILE` holds one `name:token` per line (`#` starts a comment), optionally followed
by rights after white space: `desk:TOKEN glossaries` may also create and delete the stored glossaries
(RIGHTS), which every valid token may read. A caller sends
`authorization: Bearer <token>`; a missing or unknown token gets UNAUTHENTICATED before the request
is even looked at. Tokens are compared in constant time, each against every entry. The *name* of the
caller's token (never the token) is what the access log and the metrics see. grpc.health.v1 stays
open, so Kubernetes probes need no token; reflection needs one like everything else.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from ..errors import PermissionDenied, Unauthenticated
from .interception import (
    OPEN_SERVICES,
    Behavior,
    Context,
    Handler,
    HandlerInterceptor,
    is_streaming,
    replace_behavior,
    responses,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# The token name of the current call ("" when auth is off), for the access log and metrics.
caller: contextvars.ContextVar[str] = contextvars.ContextVar("tarjama_caller", default="")
# The rights of the current call's token; None when auth is off (a server without tokens lets every
# caller do everything, as it lets every caller translate).
rights: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar("tarjama_rights", default=None)

# What a token may do beyond translating and reading: `glossaries` creates and deletes stored glossaries.
RIGHTS = ("glossaries",)


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message names the file and the line."""


def parse_tokens(text: str, source: str) -> dict[str, bytes]:
    """`name:token` lines → {name: token}; comments and blank lines skipped; every problem named."""
    return parse_token_rights(text, source)[0]


def parse_token_rights(text: str, source: str) -> tuple[dict[str, bytes], dict[str, frozenset[str]]]:
    """`name:token [right ...]` lines → ({name: token}, {name: its rights}); every problem named."""
    tokens: dict[str, bytes] = {}
    granted: dict[str, frozenset[str]] = {}
    seen: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, rest = (part.strip() for part in line.partition(":"))
        token, *given = rest.split() or [""]
        if not sep or not name or not token:
            raise TokenFileError(f"{source}:{number}: expected name:token")
        unknown = [right for right in given if right not in RIGHTS]
        if unknown:
            raise TokenFileError(
                f"{source}:{number}: {unknown[0][:40]!r} is not a right (after the token: {', '.join(RIGHTS)})"
            )
        granted[name] = frozenset(given)
        if name in tokens:
            raise TokenFileError(f"{source}:{number}: the name {name!r} is used twice")
        if token.encode() in seen:
            raise TokenFileError(f"{source}:{number}: this token is given to two names")
        if len(token) < 16:
            raise TokenFileError(f"{source}:{number}: the token of {name!r} is shorter than 16 characters")
        tokens[name] = token.encode()
        seen.add(token.encode())
    if not tokens:
        raise TokenFileError(f"{source}: no tokens (one name:token per line)")
    return tokens, granted


def read_token_text(path: Path, flag: str) -> str:
    """A tokens file's text; TokenFileError (one line) when it cannot be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TokenFileError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError: it used to escape as a traceback
        line = data.count(b"\n", 0, exc.start) + 1
        raise TokenFileError(f"{path}:{line}: {flag} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


class TokenFile:
    """The tokens of `--auth-tokens-file`; `reload()` swaps them atomically, or keeps the old on error."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._tokens, self._rights = self._read()

    def _read(self) -> tuple[dict[str, bytes], dict[str, frozenset[str]]]:
        return parse_token_rights(read_token_text(self.path, "--auth-tokens-file"), str(self.path))

    def reload(self) -> bool:
        """Re-read the file (on SIGHUP). A broken file is logged and the tokens in use are kept."""
        parsed = reread(self._read, "auth tokens not reloaded, the previous ones stay in force")
        if parsed is None:
            return False
        self._tokens, self._rights = parsed  # one assignment: the old set or the new one, never a mix
        log.info("auth tokens reloaded from %s: %d names", self.path, len(parsed[0]))
        return True

    def rights_of(self, name: str) -> frozenset[str]:
        return self._rights.get(name, frozenset())

    @property
    def names(self) -> list[str]:
        return sorted(self._tokens)

    def name_for(self, presented: str | None) -> str | None:
        """The name whose token is `presented`, comparing with every entry in constant time."""
        if not presented:
            return None
        candidate = presented.encode()
        found = None
        for name, token in self._tokens.items():
            if hmac.compare_digest(candidate, token):
                found = name
        return found


def admit_token(tokens: TokenFile | None, presented: str | None, how: str = "'Authorization: Bearer <token>'") -> None:
    """For a door that reads its own token (the HTTP APIs): Unauthenticated unless `presented` is a
    known token; then the call's caller and rights are set, as the gRPC interceptor sets them."""
    if tokens is None:
        return
    name = tokens.name_for(presented)
    if name is None:
        why = "no token" if not presented else "unknown token"
        raise Unauthenticated(f"{why}: send {how}")
    caller.set(name)
    rights.set(tokens.rights_of(name))


def require_right(right: str, what: str) -> None:
    """PermissionDenied unless the current call's token holds `right` (always allowed without tokens)."""
    held = rights.get()
    if held is not None and right not in held:
        raise PermissionDenied(
            f"{what} needs a token with the {right!r} right; this token ({caller.get()!r}) has not got it "
            f"(the tokens file gives it after the token: 'name:token {right}')"
        )


def reread(read: Callable[[], T], failure: str) -> T | None:
    """`read()` again (on SIGHUP), or None with one error line: a broken file never replaces good tokens."""
    try:
        return read()
    except TokenFileError as exc:
        log.error("%s: %s", failure, exc)
        return None


class ScrapeToken:
    """The one token of `--metrics-token-file`: the whole file, trimmed, as Prometheus reads its
    `authorization: credentials_file`, so both can read the same file. `reload()` as TokenFile's."""

    FLAG = "--metrics-token-file"

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._token = self._read()

    def _read(self) -> bytes:
        token = read_token_text(self.path, self.FLAG).strip()
        if not token or any(c.isspace() for c in token):
            raise TokenFileError(f"{self.path}: {self.FLAG} must hold one token and nothing else")
        if len(token) < 16:
            raise TokenFileError(f"{self.path}: the token in {self.FLAG} is shorter than 16 characters")
        return token.encode()

    def reload(self) -> bool:
        token = reread(self._read, "metrics token not reloaded, the previous one stays in force")
        if token is None:
            return False
        self._token = token
        log.info("metrics token reloaded from %s", self.path)
        return True

    def accepts(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value is `Bearer <this token>` (compared in constant time)."""
        presented = bearer_of(authorization) or ""
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self._token)


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `authorization` value `Bearer <token>` (any case), or None: one reading for
    gRPC's metadata, the HTTP doors and the metrics scrape."""
    header = authorization or ""
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return bearer_of(value)
    return None


def wrap_behavior(handler: Handler, before: Callable[[], object]) -> Handler:
    """The same handler with `before()` run in the call's own context first, whatever its kind."""

    def wrap(behavior: Behavior) -> Behavior:
        if is_streaming(handler):

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                before()
                async for response in responses(behavior(request, context)):
                    yield response

            return stream

        async def unary(request: Any, context: Context) -> Any:
            before()
            return await behavior(request, context)

        return unary

    return replace_behavior(handler, wrap)


def refusal(handler: Handler, message: str) -> Handler:
    """A handler of the same kind that answers UNAUTHENTICATED without looking at the request."""

    def wrap(_behavior: Behavior) -> Behavior:
        if is_streaming(handler):

            async def stream(request: Any, context: Context) -> AsyncIterator[None]:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
                yield  # makes this an async generator; never reached

            return stream

        async def unary(request: Any, context: Context) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return unary

    return replace_behavior(handler, wrap)


class AuthInterceptor(HandlerInterceptor):
    """Refuses every call but health's without a known bearer token; names the caller for the log."""

    def __init__(self, tokens: TokenFile) -> None:
        self.tokens = tokens

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        if details.method.startswith(OPEN_SERVICES):
            return handler
        presented = bearer_token(details.invocation_metadata)
        name = self.tokens.name_for(presented)
        if name is None:
            why = "no bearer token" if presented is None else "unknown token"
            return refusal(handler, f"{why}: send 'authorization: Bearer <token>' (tarjama --token, TARJAMA_TOKEN)")
        granted = self.tokens.rights_of(name)

        def identify() -> None:
            caller.set(name)
            rights.set(granted)

        return wrap_behavior(handler, identify)
