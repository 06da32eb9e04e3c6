"""Paid calls to an OpenAI-compatible chat-completions endpoint through the ``openai`` SDK, and what they cost.

Retries — one layer per concern (DESIGN §5): the request layer is **the SDK's own retry** (``max_retries``
passed to ``openai.OpenAI``): it retries 408/409/429/5xx and connection errors with exponential backoff and
honours ``Retry-After``/``retry-after-ms``. Nothing here retries a call. When the SDK gives up, the error is
translated (:func:`translate_error`) into a retryable :class:`~core.errors.RateLimited` or
:class:`~core.errors.ProviderUnavailable`, which the Prefect task may retry once more later. Everything else
fails fast: 401/403 (:class:`~core.errors.AuthFailed`), 404 (the model is named), 400 context too long, and
``finish_reason == "length"`` (raise ``max_output_tokens``).

Response modes: structured output with a strict JSON schema first; a server that refuses it (400 naming
``response_format``) is asked in JSON mode, then in the file-block text format (:mod:`blocks.generators.wire`).
The mode that worked is remembered per endpoint and model for the life of the process.

Secrets: errors never carry provider text for 401/403 (OpenAI echoes part of the key there) and other
provider text is redacted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import openai
from pydantic import BaseModel

from blocks.generators.base import Usage
from blocks.generators.wire import MODES, ResponseMode, response_format
from core.errors import (
    AuthFailed,
    GenerationFailed,
    PomBoltError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
from core.redaction import get_request_id, redact

__all__ = ["PROVIDER", "Chat", "MessageBuilder", "Messages", "translate_error"]

PROVIDER = "llm"
_CONTEXT_MARKERS = ("context_length", "context length", "maximum context", "too many tokens", "prompt is too long")
_FORMAT_MARKERS = ("response_format", "json_schema", "json_object", "structured output")

Messages = list[dict[str, str]]
MessageBuilder = Callable[[ResponseMode], Messages]
"""The messages for a response mode (the prompt describes the format it asks for)."""

_modes_lock = threading.Lock()
_known_modes: dict[tuple[str, str], ResponseMode] = {}  # (base_url, model) -> the mode the server accepted


def translate_error(exc: openai.OpenAIError, *, model: str, base_url: str, secret: str = "") -> PomBoltError:
    """Translate an SDK error into ours (the SDK has already done its retries).

    Args:
        exc: What the SDK raised.
        model: The model asked for (named in a 404).
        base_url: The endpoint (named in connection errors).
        secret: The API key, masked wherever provider text is quoted.

    Returns:
        The error to raise ``from exc``.
    """
    status = getattr(exc, "status_code", None)
    said = redact(str(getattr(exc, "message", "") or exc), [secret])[:300]
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthFailed(
            PROVIDER,
            f"the LLM endpoint rejected the API key (HTTP {status}); check OPENAI_API_KEY or the Block's api_key",
            status=status,
        )
    if isinstance(exc, openai.NotFoundError):
        return ProviderRejected(
            PROVIDER,
            f"model {model!r} was not found at {base_url} (HTTP 404); set POMBOLT_LLM_MODEL or the Block's "
            "model to one the endpoint lists",
            status=status,
        )
    if isinstance(exc, openai.BadRequestError) and _is_context_error(said):
        return ProviderRejected(
            PROVIDER,
            f"the prompt is longer than model {model!r} accepts (HTTP 400: {said}); shorten the requirements "
            "or use a model with a larger context",
            status=status,
        )
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(PROVIDER, f"rate limited after the SDK's retries (HTTP 429: {said}); try later", status=429)
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return ProviderUnavailable(
            PROVIDER, f"cannot reach {base_url} ({type(exc).__name__}); check OPENAI_BASE_URL and the server"
        )
    if isinstance(exc, openai.APIStatusError) and (status or 0) >= 500:
        return ProviderUnavailable(
            PROVIDER, f"the endpoint failed after the SDK's retries (HTTP {status}: {said}); try later", status=status
        )
    return ProviderRejected(
        PROVIDER,
        f"the endpoint refused the request (HTTP {status}: {said}); check the model and settings",
        status=status,
    )


def _is_context_error(text: str) -> bool:
    return any(m in text.lower() for m in _CONTEXT_MARKERS)


def _refused_format(exc: openai.BadRequestError) -> bool:
    """Whether a 400 says the server does not support the response format asked for."""
    said = str(getattr(exc, "message", "") or exc).lower()
    return any(m in said for m in _FORMAT_MARKERS) and not _is_context_error(said)


class Chat:
    """One model at one endpoint: paid calls with response-mode fallback, each answer checked and its cost counted."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        base_url: str,
        model: str,
        temperature: float,
        max_output_tokens: int,
        secret: str,
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self._secret = secret

    def fail(self, exc: openai.OpenAIError) -> PomBoltError:
        """Our error for what the SDK raised."""
        return translate_error(exc, model=self.model, base_url=self.base_url, secret=self._secret)

    def list_models(self) -> list[str] | None:
        """The model ids the endpoint offers (free), or None when it has no ``/models``.

        Raises:
            PomBoltError: Translated from the SDK (bad key, unreachable endpoint, ...).
        """
        try:
            return [m.id for m in self.client.models.list(extra_headers=request_headers())]
        except openai.NotFoundError:
            return None
        except openai.OpenAIError as exc:
            raise self.fail(exc) from exc

    def complete(
        self, build: MessageBuilder, shape: type[BaseModel], *, only: ResponseMode | None = None
    ) -> tuple[str, Usage, ResponseMode]:
        """One paid call, falling back to a simpler response mode when the server refuses one (400).

        Args:
            build: The messages for a response mode.
            shape: The wire model a structured answer follows.
            only: Use just this mode (for re-asking in the mode that answered).

        Returns:
            The answer text, what it cost and the mode that was used.
        """
        modes = [only] if only is not None else list(MODES[MODES.index(self._known_mode()) :])
        for i, mode in enumerate(modes):
            fmt = response_format(mode, shape)
            try:
                response = self._create(build(mode), fmt)
            except openai.BadRequestError as exc:
                if _refused_format(exc) and i + 1 < len(modes):
                    continue
                raise self.fail(exc) from exc
            except openai.OpenAIError as exc:
                raise self.fail(exc) from exc
            if fmt is not None or mode == "file_blocks":
                with _modes_lock:
                    _known_modes[(self.base_url, self.model)] = mode
            return self._answer(response), usage_of(response), mode
        raise AssertionError("unreachable")  # pragma: no cover

    def _known_mode(self) -> ResponseMode:
        with _modes_lock:
            return _known_modes.get((self.base_url, self.model), "json_schema")

    def _create(self, messages: Messages, fmt: dict[str, Any] | None) -> Any:
        create: Any = self.client.chat.completions.create  # dict messages, as servers accept
        return create(
            model=self.model,
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_output_tokens,
            extra_headers=request_headers(),
            **({"response_format": fmt} if fmt else {}),
        )

    def _answer(self, response: Any) -> str:
        """The answer's text; a truncated, empty or refused answer fails (never retried)."""
        if not response.choices:
            raise GenerationFailed(f"model {self.model!r} returned no choices; run again or use another model")
        choice = response.choices[0]
        if choice.finish_reason == "length":
            raise GenerationFailed(
                f"model {self.model!r} stopped at max_output_tokens={self.max_output_tokens} before the answer "
                "was complete; raise max_output_tokens on the Block, or lower plan_threshold_chars so the app "
                "is generated one file per call"
            )
        content = choice.message.content
        if not content:
            refusal = getattr(choice.message, "refusal", None)
            why = f" (refusal: {str(refusal)[:200]})" if refusal else ""
            raise GenerationFailed(f"model {self.model!r} returned an empty answer{why}; rephrase the requirements")
        text: str = content
        return text


def usage_of(response: Any) -> Usage:
    """What one call cost, as the endpoint reported it (missing counts are 0)."""
    usage = response.usage
    return Usage(
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        calls=1,
    )


def request_headers() -> dict[str, str]:
    """Headers every call carries: the current request id, so a run is traceable at the provider."""
    request_id = get_request_id()
    return {"X-Request-Id": request_id} if request_id else {}
