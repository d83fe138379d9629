"""The `pytools` example plugin: Warden tools written in Python.

Each method of `WitWorld` implements the export of the same name in
`wit/world.wit` (`word-stats` becomes `word_stats`). Build it with
`componentize-py` (see `warden.toml` and `sdk/python.md`).
"""

import re
from collections import Counter

import wit_world
from componentize_py_types import Err
from wit_world.imports import log, memory, outgoing_handler, streams, types

#: The memory namespace this plugin uses; the operator grants it.
NAMESPACE = "pytools"


def _info(message: str, **fields: str) -> None:
    """A line in the host's log, tagged with the plugin and the call."""
    log.write(log.Level.INFO, message, list(fields.items()))


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        _info("greeting", name=name)
        return f"Hello, {name}!"

    def word_stats(self, text: str, options: wit_world.StatsOptions | None) -> wit_world.Stats:
        ignore_case = options.ignore_case if options else False
        top = options.top if options and options.top is not None else 3
        words = re.findall(r"[\w']+", text)
        if ignore_case:
            words = [w.lower() for w in words]
        counts = sorted(Counter(words).items(), key=lambda wc: (-wc[1], wc[0]))[:top]
        return wit_world.Stats(
            words=len(words),
            top=[wit_world.WordCount(word=w, count=c) for w, c in counts],
        )

    def http_get(self, url: str, max_bytes: int) -> tuple[int, str]:
        status, body = _get(url, max_bytes)
        _info("fetched", url=url, status=str(status), bytes=str(len(body)))
        return status, body.decode("utf-8", errors="replace")

    def remember(self, key: str, text: str) -> None:
        try:
            memory.set(NAMESPACE, key, text.encode(), "text/plain", None)
        except Err as err:
            raise Err(f"remember {key}: {_memory_error(err.value)}") from None

    def recall(self, key: str) -> str | None:
        try:
            entry = memory.get(NAMESPACE, key)
        except Err as err:
            raise Err(f"recall {key}: {_memory_error(err.value)}") from None
        return None if entry is None else entry.value.decode("utf-8", errors="replace")


def _memory_error(error: object) -> str:
    """`denied: …`, `too-large: …` for the host's `memory.error` cases."""
    case = type(error).__name__.removeprefix("Error_").lower().replace("toolarge", "too-large")
    return f"{case}: {getattr(error, 'value', error)}"


def _get(url: str, max_bytes: int) -> tuple[int, bytes]:
    """HTTP GET through `wasi:http/outgoing-handler`; raises `Err(str)` on failure."""
    match = re.fullmatch(r"(https?)://([^/?#]+)([^#]*)", url)
    if match is None:
        raise Err(f"not an http(s) URL: {url}")
    scheme, authority, path = match.groups()
    request = types.OutgoingRequest(types.Fields.from_list([("user-agent", b"warden-pytools/0.1")]))
    request.set_scheme(types.Scheme_Https() if scheme == "https" else types.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(path or "/")
    try:
        future = outgoing_handler.handle(request, None)
        while (answer := future.get()) is None:
            future.subscribe().block()
        response = answer.value.value  # Ok(Ok(response)); errors raise below
    except Err as err:
        raise Err(_error_name(err.value)) from None
    if isinstance(answer.value, Err):
        raise Err(_error_name(answer.value.value))
    body = response.consume()
    stream = body.stream()
    data = b""
    try:
        while len(data) < max_bytes:
            data += stream.blocking_read(min(16384, max_bytes - len(data)))
    except Err as err:
        if not isinstance(err.value, streams.StreamError_Closed):
            raise Err(f"reading the body of {url}: {err.value}") from None
    return response.status(), data[:max_bytes]


def _error_name(code: object) -> str:
    """`ErrorCode::HttpRequestDenied` for the host's `HTTP-request-denied`, and so on."""
    value = getattr(code, "value", None)
    name = type(code).__name__.replace("ErrorCode_", "ErrorCode::")
    return name if value is None else f"{name}({value})"
