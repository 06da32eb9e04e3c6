"""A stateful fake of an OpenAI-compatible chat-completions server (OpenAI, Ollama, vLLM, ...).

Routes: ``GET /v1/models`` and ``POST /v1/chat/completions`` behind ``require_bearer``; errors use
OpenAI's ``{"error": {"message", "type", "code"}}`` body. Behaviour like the real thing:

- an unknown model is a 404 ``model_not_found``;
- ``response_format`` ``json_schema`` / ``json_object`` can be switched off (a 400 naming
  ``response_format``, as servers without structured output answer);
- the answer is the next queued one (:meth:`FakeOpenAI.queue`), or, when the queue is empty, what the
  ``responder`` makes of the request — :func:`app_responder` answers plans, per-file requests, whole
  projects and repairs from a dict of files;
- ``usage`` is counted from the request and answer sizes (4 characters a token), ``finish_reason`` is
  ``"length"`` when an answer is longer than ``max_tokens`` allows;
- ``fail_file(path, status, times)`` fails the next requests that ask for one planned file (429/500/...,
  with ``Retry-After`` in seconds when ``retry_after`` is set), so one mapped task can be made to fail;
- HTTP-level faults (429/500/401) come from the base: ``script(...)``, ``FaultPlan``, ``tokens``.

Example:
    with FakeOpenAI(tokens={"k"}) as fake:
        fake.queue(project_json({"index.html": "<h1>hi</h1>"}))
        openai.OpenAI(api_key="k", base_url=fake.api_url).chat.completions.create(...)
        assert fake.calls() == 1
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeService, Request, Response, route

Responder = Callable[[dict[str, Any]], str]

_FILE_ASK = re.compile(r'Write exactly one file of the app planned below: "(?P<path>[^"]+)"')
_REPAIR_ASK = re.compile(r"^--- (?P<path>\S+) ---$", re.MULTILINE)


@dataclass
class Answer:
    """One queued answer: text and finish reason (``usage`` is computed unless given)."""

    content: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Completion:
    """A completion request the fake answered (200 or an error it chose)."""

    model: str
    messages: list[dict[str, Any]]
    mode: str
    status: int
    asked_file: str | None = None
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """The last user message."""
        return next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")


def project_json(files: dict[str, str], *, action: str = "add") -> str:
    """A wire-format JSON answer holding ``files``."""
    return json.dumps(
        {
            "files": [{"path": p, "content": c, "encoding": "utf-8", "action": action} for p, c in files.items()],
            "notes": "",
        }
    )


def file_blocks(files: dict[str, str]) -> str:
    """A file-block text answer holding ``files``."""
    return "Here you go.\n\n" + "".join(f"=== FILE: {p} ===\n{c}\n=== END FILE ===\n" for p, c in files.items())


def plan_json(files: dict[str, str]) -> str:
    """A plan answer listing ``files``."""
    return json.dumps(
        {"files": [{"path": p, "purpose": f"the {p} file"} for p in files], "notes": "ids are kebab-case"}
    )


def app_responder(files: dict[str, str], *, fixes: dict[str, str] | None = None) -> Responder:
    """Answer like a model that always writes the app ``files``.

    Plans list ``files``; a per-file request gets that one file; a repair gets ``fixes`` (or the same
    files); anything else gets the whole project. The wire format follows the request's mode.
    """

    def respond(body: dict[str, Any]) -> str:
        prompt = next((m["content"] for m in reversed(body["messages"]) if m.get("role") == "user"), "")
        blocks = "response_format" not in body and "=== FILE:" in prompt
        wrap = file_blocks if blocks else project_json
        if prompt.startswith("Plan the app"):
            return plan_json(files)
        asked = _FILE_ASK.search(prompt)
        if asked:
            path = asked.group("path")
            return wrap({path: files[path]})
        if "failed automatic checks" in prompt:
            wanted = _REPAIR_ASK.findall(prompt)
            chosen = fixes or files
            return wrap({p: chosen[p] for p in wanted if p in chosen} or dict(chosen))
        return wrap(files)

    return respond


class FakeOpenAI(FakeService):
    """A fake OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        *,
        tokens: set[str] | frozenset[str] = frozenset(),
        models: tuple[str, ...] = ("gpt-test",),
        json_schema: bool = True,
        json_object: bool = True,
        responder: Responder | None = None,
        chars_per_token: int = 4,
    ) -> None:
        super().__init__(tokens=tokens)
        self.models = list(models)
        self.json_schema = json_schema
        self.json_object = json_object
        self.responder = responder
        self.chars_per_token = chars_per_token
        self.answers: list[Answer] = []
        self.completions: list[Completion] = []
        self.file_failures: dict[str, list[tuple[int, float | None]]] = {}
        self._ids = itertools.count(1)

    @property
    def api_url(self) -> str:
        """The base URL clients use (``.../v1``)."""
        return f"{self.url}/v1"

    # --- knobs for tests ---------------------------------------------------------------------------
    def queue(self, *answers: str | Answer) -> None:
        """Queue answers for the next successful completions, in order."""
        with self.lock:
            self.answers.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def fail_file(self, path: str, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Fail the next ``times`` requests that ask for the planned file ``path`` with ``status``."""
        with self.lock:
            self.file_failures.setdefault(path, []).extend([(status, retry_after)] * times)

    def calls(self) -> int:
        """Every request to the completions endpoint, whatever it was answered."""
        return self.count("POST", r"/v1/chat/completions")

    def paid(self) -> int:
        """Completions answered 200 (the ones that cost tokens)."""
        return sum(1 for c in self.completions if c.status == 200)

    def error_body(self, status: int, message: str) -> Any:
        """OpenAI's error shape."""
        kind = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_exceeded"}
        return {"error": {"message": message, "type": kind.get(status, "server_error"), "param": None, "code": None}}

    def _openai_error(
        self, status: int, message: str, code: str | None, headers: dict[str, str] | None = None
    ) -> Response:
        body = self.error_body(status, message)
        body["error"]["code"] = code
        return Response(status, body, dict(headers or {}))

    # --- routes ------------------------------------------------------------------------------------
    @route("GET", r"/v1/models")
    def list_models(self, request: Request) -> Response:
        denied = self.require_bearer(request)
        if denied:
            return self._openai_error(401, "Incorrect API key provided.", "invalid_api_key")
        return Response(
            200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]}
        )

    @route("POST", r"/v1/chat/completions")
    def chat(self, request: Request) -> Response:
        if self.require_bearer(request):
            return self._openai_error(401, "Incorrect API key provided.", "invalid_api_key")
        body = request.json() or {}
        model = str(body.get("model", ""))
        fmt = (body.get("response_format") or {}).get("type", "text")
        prompt = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        asked = _FILE_ASK.search(prompt)
        record = Completion(model, body.get("messages", []), fmt, 200, asked.group("path") if asked else None)
        self.completions.append(record)
        if model not in self.models:
            record.status = 404
            return self._openai_error(404, f"The model `{model}` does not exist.", "model_not_found")
        if (fmt == "json_schema" and not self.json_schema) or (fmt == "json_object" and not self.json_object):
            record.status = 400
            return self._openai_error(400, f"response_format '{fmt}' is not supported by this server", None)
        if fmt == "json_schema":
            schema = body["response_format"]["json_schema"]
            if not schema.get("strict") or schema["schema"].get("additionalProperties") is not False:
                record.status = 400
                return self._openai_error(400, "strict json_schema needs additionalProperties: false", None)
        if record.asked_file and self.file_failures.get(record.asked_file):
            status, retry_after = self.file_failures[record.asked_file].pop(0)
            record.status = status
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return self._openai_error(status, f"injected {status} for {record.asked_file}", None, headers)
        if self.answers:
            answer = self.answers.pop(0)
        elif self.responder is not None:
            answer = Answer(self.responder(body))
        else:
            record.status = 500
            return self._openai_error(500, "fake: no answer queued and no responder", None)
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        usage = {
            "prompt_tokens": answer.prompt_tokens
            if answer.prompt_tokens is not None
            else max(1, prompt_chars // self.chars_per_token),
            "completion_tokens": answer.completion_tokens
            if answer.completion_tokens is not None
            else max(1, len(answer.content) // self.chars_per_token),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        record.usage = usage
        content = answer.content
        finish = answer.finish_reason
        limit = body.get("max_tokens")
        if finish == "stop" and isinstance(limit, int) and usage["completion_tokens"] > limit:
            content, finish = content[: limit * self.chars_per_token], "length"
        return Response(
            200,
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": 1_790_000_000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            },
        )
