"""A local OpenAI-compatible model server for tests over real HTTP.

It speaks the slice of the OpenAI API that vLLM, Ollama and llama.cpp's server speak and that
litellm's ``openai/<model id>`` provider uses: ``POST /v1/chat/completions`` (plain, or streamed
as server-sent events) and ``GET /v1/models``. It binds 127.0.0.1 on a free port, answers from
a script, reports usage, records every request it receives, and fails on demand the way real
servers fail (429 with ``retry-after``, 500, 401, context length exceeded, a slow answer).

Token counting is deliberately simple and deterministic, since the usage it reports is what
gets billed: one token per whitespace-separated word of a message's text (``count_tokens``).
``prompt_tokens`` is the sum over the request's messages; ``completion_tokens`` is the count of
the answer (cut to ``max_tokens`` words, with ``finish_reason: "length"``, when it is longer).
With ``prompt_cache=True`` the tokens of the longest run of leading messages already seen in an
earlier answered request are reported as ``prompt_tokens_details.cached_tokens``.

Examples:
    ```python
    with OpenAIStandIn(script=["first answer", "second answer"]) as server:
        server.fail_next(status=429)
        litellm.completion(model="openai/standin-model", api_base=server.api_base, ...)
    ```
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[dict[str, Any]], str] | Sequence[str] | Mapping[str, str] | None
DEFAULT_MODEL_ID = "standin-model"


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message of a chat request ("" when there is none)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return ""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it, before any fault or answer."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    at: float


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of (or before) answering it normally."""

    status: int | None = None
    """HTTP status to fail with; None answers normally (after ``delay_seconds``)."""
    message: str = ""
    """The error message in the OpenAI-style error body."""
    retry_after: float | None = None
    """Value of the ``retry-after`` header, in seconds (429 only by default)."""
    delay_seconds: float = 0.0
    """Seconds to wait before responding."""


class _Reply(Exception):
    """An HTTP error response, raised inside the handler and written by it."""

    def __init__(self, status: int, error: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(error.get("message", ""))
        self.status, self.error, self.headers = status, error, headers or {}


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"message": message, "type": kind, "param": None, "code": code}


_STATUS_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}


class OpenAIStandIn:
    """An OpenAI-compatible chat server on 127.0.0.1, used as a context manager.

    Args:
        name: What the server stands for (e.g. "self-hosted", "hosted"), for messages.
        script: The answers: a callable ``(request body) -> str``; a list of answers used in
            order (a request past the end fails with HTTP 500); or a dict whose first key found
            in the last user message picks the answer (no key found: HTTP 500). None echoes.
        context_window: Token limit of prompt plus ``max_tokens``; beyond it, HTTP 400
            ``context_length_exceeded`` as OpenAI sends it.
        model_ids: Model ids served (listed by ``/v1/models``); others get HTTP 404.
        api_key: When set, requests must carry ``Authorization: Bearer <api_key>`` or get 401.
        prompt_cache: Report repeated leading messages as ``cached_tokens``.
    """

    def __init__(
        self,
        name: str = "self-hosted",
        script: Script = None,
        context_window: int = 8192,
        model_ids: Sequence[str] = (DEFAULT_MODEL_ID,),
        api_key: str | None = None,
        prompt_cache: bool = False,
    ) -> None:
        self.name = name
        self.script = script
        self.context_window = context_window
        self.model_ids = list(model_ids)
        self.api_key = api_key
        self.prompt_cache = prompt_cache
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._answered = 0
        self._seen_prefixes: set[str] = set()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> OpenAIStandIn:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve from a background thread."""
        self._closing.clear()
        handler = type("Handler", (_Handler,), {"standin": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll; keep tests quick
            name=f"openai-standin-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; requests still sleeping in a slow fault wake up and are dropped."""
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"stand-in {self.name!r} is not running; use it as `with ...:`")
        return int(self._httpd.server_address[1])

    @property
    def api_base(self) -> str:
        """The base URL to give litellm as ``api_base`` (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- what it received ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat completion requests received so far."""
        return [r.body or {} for r in self.requests if r.path.endswith("/chat/completions")]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # -- fault injection -------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail the next ``times`` chat requests with ``status`` (429 sends ``retry-after``)."""
        if retry_after is None and status == 429:
            retry_after = 1
        text = message or f"stand-in {self.name!r} injected HTTP {status}"
        self._queue(Fault(status=status, message=text, retry_after=retry_after), times)

    def slow_next(self, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` chat requests normally, but only after ``seconds``."""
        self._queue(Fault(delay_seconds=seconds), times)

    def _queue(self, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def wait(self, seconds: float) -> None:
        """Sleep, waking early when the server stops."""
        self._closing.wait(seconds)

    # -- answering -------------------------------------------------------------------------

    def check_api_key(self, headers: Mapping[str, str]) -> None:
        if self.api_key is None:
            return
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given != self.api_key:
            shown = (given[:5] + "***") if given else "(none)"
            raise _Reply(
                401,
                _error(
                    f"Incorrect API key provided: {shown}. The stand-in {self.name!r} expects "
                    "another key.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )

    def apply_fault(self) -> None:
        fault = self._next_fault()
        if fault is None:
            return
        if fault.delay_seconds:
            self.wait(fault.delay_seconds)
        if fault.status is None:
            return
        kind, code = _STATUS_ERRORS.get(fault.status, ("server_error", None))
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        raise _Reply(fault.status, _error(fault.message, kind, code), headers)

    def check_request(self, body: Mapping[str, Any]) -> tuple[str, int, int | None]:
        """Validate a chat request: its model id, prompt token count and ``max_tokens``."""
        model = str(body.get("model", ""))
        if model not in self.model_ids:
            raise _Reply(
                404,
                _error(
                    f"The model `{model}` does not exist; {self.name!r} serves {self.model_ids}.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Reply(
                400, _error("'messages' must be a non-empty list.", "invalid_request_error", None)
            )
        prompt = sum(count_tokens(message_text(m)) for m in messages if isinstance(m, Mapping))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        max_tokens = int(limit) if limit is not None else None
        self.check_context(prompt, max_tokens)
        return model, prompt, max_tokens

    def check_context(self, prompt: int, max_tokens: int | None) -> None:
        window = self.context_window
        if prompt > window:
            detail = f"your messages resulted in {prompt} tokens"
        elif max_tokens is not None and prompt + max_tokens > window:
            detail = (
                f"you requested {prompt + max_tokens} tokens ({prompt} in the messages, "
                f"{max_tokens} in the completion)"
            )
        else:
            return
        raise _Reply(
            400,
            _error(
                f"This model's maximum context length is {window} tokens. However, {detail}. "
                "Please reduce the length of the messages or completion.",
                "invalid_request_error",
                "context_length_exceeded",
            ),
        )

    def answer_for(self, body: dict[str, Any]) -> str:
        """The scripted answer to a chat request."""
        script = self.script
        if script is None:
            return f"{self.name} echo: {last_user_text(body)}"
        if callable(script):
            return str(script(body))
        if isinstance(script, Mapping):
            text = last_user_text(body)
            for marker, answer in script.items():
                if marker in text:
                    return answer
            raise _Reply(
                500,
                _error(
                    f"stand-in {self.name!r} has no scripted answer for a message containing "
                    f"none of {list(script)}",
                    "server_error",
                    None,
                ),
            )
        with self._lock:
            index = self._answered
            self._answered += 1
        if index >= len(script):
            raise _Reply(
                500,
                _error(
                    f"stand-in {self.name!r} ran out of scripted answers "
                    f"(request {index + 1}, {len(script)} scripted)",
                    "server_error",
                    None,
                ),
            )
        return script[index]

    def cached_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens of the longest run of leading messages seen before; remembers these ones."""
        if not self.prompt_cache:
            return 0
        keys = [json.dumps(list(messages[: n + 1]), sort_keys=True) for n in range(len(messages))]
        with self._lock:
            hit = 0
            for n, key in enumerate(keys):
                if key in self._seen_prefixes:
                    hit = n + 1
            self._seen_prefixes.update(keys)
        return sum(count_tokens(message_text(m)) for m in messages[:hit])

    def completion(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Check, fault and answer one chat request: the response and the answer's words."""
        self.apply_fault()
        model, prompt, max_tokens = self.check_request(body)
        words = self.answer_for(body).split(" ")
        finish = "stop"
        if max_tokens is not None and count_tokens(" ".join(words)) > max_tokens:
            words, finish = _first_words(words, max_tokens), "length"
        text = " ".join(words)
        cached = self.cached_tokens(body["messages"])
        completion_tokens = count_tokens(text)
        response = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": f"standin-{self.name}",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
        return response, words

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": self.name}
                for m in self.model_ids
            ],
        }


def _first_words(words: list[str], limit: int) -> list[str]:
    """The leading words holding ``limit`` tokens (spacing kept as the answer had it)."""
    kept: list[str] = []
    for word in words:
        if word and count_tokens(" ".join([*kept, word])) > limit:
            break
        kept.append(word)
    return kept


def stream_chunks(response: Mapping[str, Any], words: list[str], usage: bool) -> Iterator[str]:
    """The SSE ``data:`` payloads OpenAI streams for ``response``, one word per chunk."""
    base = {k: response[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    finish = response["choices"][0]["finish_reason"]

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return json.dumps({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    for n, word in enumerate(words):
        yield chunk({"content": word if n == 0 else " " + word})
    yield chunk({}, finish)
    if usage:
        yield json.dumps({**base, "choices": [], "usage": response["usage"]})
    yield "[DONE]"


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to its stand-in; HTTP/1.0, so each response closes its socket."""

    standin: OpenAIStandIn
    server_version = "OpenAIStandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests instead of a log

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _handle(self, route: Callable[[RecordedRequest], None]) -> None:
        request = self._read()
        self.standin._record(request)
        try:
            self.standin.check_api_key(request.headers)
            route(request)
        except _Reply as reply:
            self._send_json(reply.status, {"error": reply.error}, reply.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout); nothing left to tell it
        except Exception as exc:  # a script that raised: say so instead of dropping the socket
            message = f"stand-in {self.standin.name!r} failed: {type(exc).__name__}: {exc}"
            self._send_json(500, {"error": _error(message, "server_error", None)})

    def _read(self) -> RecordedRequest:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        return RecordedRequest(self.command, path, headers, body, time.time())

    def _get(self, request: RecordedRequest) -> None:
        if request.path.rstrip("/") != "/v1/models":
            raise _Reply(404, _error(f"no route {request.path}", "invalid_request_error", None))
        self._send_json(200, self.standin.models())

    def _post(self, request: RecordedRequest) -> None:
        if request.path.rstrip("/") != "/v1/chat/completions":
            raise _Reply(404, _error(f"no route {request.path}", "invalid_request_error", None))
        body = request.body if isinstance(request.body, dict) else {}
        response, words = self.standin.completion(body)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            self._send_stream(stream_chunks(response, words, bool(options.get("include_usage"))))
        else:
            self._send_json(200, response)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, payloads: Iterator[str]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for payload in payloads:
            self.wfile.write(f"data: {payload}\n\n".encode())
            self.wfile.flush()
