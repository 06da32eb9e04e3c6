"""``OpenAICompatibleGenerator``: code generation through any OpenAI chat-completions endpoint.

OpenAI, Azure OpenAI (through its ``/openai/v1`` endpoint) and local servers (Ollama, vLLM, llama.cpp,
LM Studio) all speak the protocol; ``base_url`` picks one. Built on the real ``openai`` SDK.

Retries — one layer per concern (DESIGN §5): the request layer is **the SDK's own retry**, with its
count set explicitly (``max_retries``, default 2, passed to ``openai.OpenAI``). The SDK
retries 408/409/429/5xx and connection errors with exponential backoff and honours ``Retry-After`` /
``retry-after-ms`` (up to 60 s). We add no retry loop of ours around a call. When the SDK gives up,
the error is translated (:func:`translate_error`) into a retryable :class:`~core.errors.RateLimited`
or :class:`~core.errors.ProviderUnavailable`, which the Prefect task may retry once more later.
Everything else fails fast and is never retried: 401/403 (:class:`~core.errors.AuthFailed`, "the LLM
endpoint rejected the API key"), 404 (the model is named), 400 context too long, and
``finish_reason == "length"`` (raise ``max_output_tokens``).

Answers: structured output with a strict JSON schema first; a server that refuses ``json_schema`` (400)
is asked in JSON mode, then in the file-block text format (see :mod:`blocks.generators.wire`); the mode
that worked is remembered per endpoint and model for the life of the process. An answer that does not
parse is sent back once with the parser's complaint (``max_format_retries``).

Size rule: requirements up to ``plan_threshold_chars`` (default 2,000 characters) are generated in one
call — a small static app fits one answer. Longer requirements, which describe larger apps, get a plan
call (file list with purposes), then one call per file; ``tasks.generate`` runs those as mapped Prefect
tasks, each cached and retried on its own. Change runs always use one call.

Secrets: the API key is a ``SecretStr`` unwrapped only when the SDK client is built; errors never carry
provider text for 401/403 (OpenAI echoes part of the key there) and other provider text is redacted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import openai
from pydantic import Field, PrivateAttr, SecretStr, field_validator

from blocks.generators.base import GenerationRequest, GenerationResult, Generator, Usage
from blocks.generators.prompts import PROMPT_VERSION, prompts_digest, render
from blocks.generators.wire import (
    MODES,
    ResponseMode,
    WireFormatError,
    WirePlan,
    WireProject,
    parse_answer,
    parse_json_answer,
    response_format,
    to_generated,
)
from core.errors import (
    AuthFailed,
    ConfigError,
    GenerationFailed,
    PomBoltError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
)
from core.files import GeneratedFile
from core.http import get_request_id, redact, register_secret

PROVIDER = "llm"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
_CONTEXT_MARKERS = ("context_length", "context length", "maximum context", "too many tokens", "prompt is too long")
_FORMAT_MARKERS = ("response_format", "json_schema", "json_object", "structured output")

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
    if isinstance(exc, openai.BadRequestError) and any(m in said.lower() for m in _CONTEXT_MARKERS):
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


def _fixed(messages: list[dict[str, str]]) -> Callable[[ResponseMode], list[dict[str, str]]]:
    """A message builder that gives the same messages whatever the mode (for re-asking)."""
    return lambda _mode: messages


class OpenAICompatibleGenerator(Generator):
    """Generates apps with any OpenAI-compatible chat-completions endpoint; output is checked and repaired."""

    _block_type_name = "Pom-Bolt OpenAI-compatible Generator"
    _block_type_slug = "pombolt-openai-generator"
    _description = (
        "Generates the app with an LLM through the OpenAI chat-completions protocol (OpenAI, Azure OpenAI, "
        "Ollama, vLLM, llama.cpp, LM Studio). Output is validated, checked and repaired before it is published."
    )

    api_key: SecretStr = Field(
        title="API key", description="Key sent as a Bearer token; any value for servers needing none."
    )
    base_url: str = Field(DEFAULT_BASE_URL, title="Base URL", description="The endpoint, ending in /v1.")
    model: str = Field(DEFAULT_MODEL, title="Model", description="Model name as the endpoint lists it.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, title="Temperature", description="Sampling temperature.")
    max_output_tokens: int = Field(
        16_000, ge=256, title="Max output tokens", description="Most tokens one answer may use."
    )
    request_timeout: float = Field(
        300.0, gt=0, title="Request timeout", description="Seconds one HTTP request may take."
    )
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        title="SDK retries",
        description="Retries the SDK makes on 429/5xx/network errors (exponential backoff, honouring Retry-After).",
    )
    max_repair_rounds: int = Field(
        2, ge=0, le=5, title="Repair rounds", description="Times failing files go back to the model with the error."
    )
    max_format_retries: int = Field(
        1, ge=0, le=3, title="Format retries", description="Times an answer that does not parse is sent back."
    )
    plan_threshold_chars: int = Field(
        2000,
        ge=0,
        title="Plan threshold",
        description="Requirements longer than this are planned first, then generated one file per call.",
    )
    extra_headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        title="Extra headers",
        description="Headers added to every request (e.g. Azure's api-key); values are treated as secrets.",
    )
    prompt_version: str = Field(
        PROMPT_VERSION,
        title="Prompt version",
        description="Version of the bundled prompts (set automatically; part of the cache key).",
    )

    _client_obj: Any = PrivateAttr(default=None)

    @field_validator("prompt_version", mode="after")
    @classmethod
    def _current_prompts(cls, value: str) -> str:
        """Always the bundled prompts' version, so a saved Block never claims older prompts."""
        return PROMPT_VERSION

    @classmethod
    def from_env(cls) -> OpenAICompatibleGenerator:
        """Build the generator from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and ``POMBOLT_LLM_MODEL``.

        Raises:
            ConfigError: When ``OPENAI_API_KEY`` is not set.
        """
        key = os.environ.get("OPENAI_API_KEY", "").strip()
        if not key:
            raise ConfigError(
                "--generator openai needs OPENAI_API_KEY (any non-empty value for a local server that needs "
                "no key); set OPENAI_BASE_URL for a server other than OpenAI"
            )
        return cls(
            api_key=SecretStr(key),
            base_url=os.environ.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL,
            model=os.environ.get("POMBOLT_LLM_MODEL", "").strip() or DEFAULT_MODEL,
        )

    def fingerprint(self) -> str:
        """Configuration (no secrets) plus the exact bytes of the bundled prompts."""
        import hashlib

        return hashlib.sha256(f"{super().fingerprint()}:{prompts_digest()}".encode()).hexdigest()

    # --- the SDK client ----------------------------------------------------------------------------
    def _client(self) -> openai.OpenAI:
        if self._client_obj is None:
            register_secret(self.api_key)
            headers = {name: value.get_secret_value() for name, value in self.extra_headers.items()}
            for value in self.extra_headers.values():
                register_secret(value)
            self._client_obj = openai.OpenAI(
                api_key=self.api_key.get_secret_value(),
                base_url=self.base_url,
                timeout=self.request_timeout,
                max_retries=self.max_retries,
                default_headers=headers,
            )
        client: openai.OpenAI = self._client_obj
        return client

    def _fail(self, exc: openai.OpenAIError) -> PomBoltError:
        return translate_error(exc, model=self.model, base_url=self.base_url, secret=self.api_key.get_secret_value())

    def _request_headers(self) -> dict[str, str]:
        request_id = get_request_id()
        return {"X-Request-Id": request_id} if request_id else {}

    # --- the port ----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """List the endpoint's models (free): proves the URL, the key and that the model exists.

        Raises:
            AuthFailed: The key was rejected.
            ProviderRejected: The model is not among those listed.
            ProviderUnavailable: The endpoint cannot be reached.
        """
        try:
            models = [m.id for m in self._client().models.list(extra_headers=self._request_headers())]
        except openai.NotFoundError:
            return  # some servers have no /models; the first call will tell
        except openai.OpenAIError as exc:
            raise self._fail(exc) from exc
        if models and self.model not in models:
            shown = ", ".join(sorted(models)[:10])
            raise ProviderRejected(
                PROVIDER,
                f"model {self.model!r} is not offered at {self.base_url}; available: {shown}. "
                "Set POMBOLT_LLM_MODEL or the Block's model",
                status=404,
            )

    def wants_plan(self, request: GenerationRequest) -> bool:
        """The size rule: plan-then-files for long requirements, one call otherwise (and for changes)."""
        return request.change_request is None and len(request.requirements) > self.plan_threshold_chars

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate the whole project (one call, or plan then one call per file; see the size rule)."""
        if self.wants_plan(request):
            plan, usage = self.plan(request)
            files: list[GeneratedFile] = []
            for entry in plan.files:
                one, spent = self.generate_file(request, plan, entry.path)
                files.append(one)
                usage = usage + spent
            return GenerationResult(files=files, usage=usage, label=self._label())
        project, usage = self._ask_files(
            "generate", project_name=request.project_name, requirements=self._with_change(request)
        )
        files, deleted = to_generated(project)
        return GenerationResult(files=files, deleted=deleted, usage=usage, label=self._label())

    def plan(self, request: GenerationRequest) -> tuple[WirePlan, Usage]:
        """Ask for the file list of a larger app (one call)."""
        prompt = render("plan", project_name=request.project_name, requirements=request.requirements)
        messages = self._messages(prompt)
        text, usage, used = self._complete(_fixed(messages), WirePlan)
        for attempt in range(self.max_format_retries + 1):
            try:
                plan: WirePlan = parse_json_answer(text, WirePlan)
                if not plan.files:
                    raise WireFormatError("the plan lists no files")
                return plan, usage
            except WireFormatError as exc:
                if attempt == self.max_format_retries:
                    raise self._bad_output(exc) from exc
                messages = [*messages, *self._complaint(text, exc)]
                text, spent, used = self._complete(_fixed(messages), WirePlan, only=used)
                usage = usage + spent
        raise AssertionError("unreachable")  # pragma: no cover

    def generate_file(self, request: GenerationRequest, plan: WirePlan, path: str) -> tuple[GeneratedFile, Usage]:
        """Write one planned file (one call).

        Raises:
            GenerationFailed: When the answer does not contain that file.
        """
        purpose = next((p.purpose for p in plan.files if p.path == path), "")
        listing = "\n".join(f"- {p.path}: {p.purpose}" for p in plan.files)
        project, usage = self._ask_files(
            "file",
            path=path,
            purpose=purpose,
            project_name=request.project_name,
            requirements=request.requirements,
            plan=listing,
            conventions=plan.notes or "(none)",
        )
        files, _ = to_generated(project)
        match = [f for f in files if f.path == path] or files[:1]
        if not match:
            raise GenerationFailed(f"the model answered no file for {path!r}; run again or use another model")
        return match[0].model_copy(update={"path": path}), usage

    def repair(
        self, request: GenerationRequest, files: list[GeneratedFile], problems: dict[str, str]
    ) -> GenerationResult:
        """Send failing files back with their check output; return the replacements (one call)."""
        listing = (
            "\n\n".join(f"--- {f.path} ---\n{f.content.decode('utf-8', errors='replace')}" for f in files)
            or "(the file does not exist yet: write it)"
        )
        project, usage = self._ask_files(
            "repair",
            requirements=request.requirements,
            problems="\n".join(f"- {path or '(project)'}: {msg}" for path, msg in sorted(problems.items())),
            files=listing,
        )
        fixed, deleted = to_generated(project)
        return GenerationResult(files=fixed, deleted=deleted, usage=usage, label="repair")

    # --- calls -------------------------------------------------------------------------------------
    def _label(self) -> str:
        return f"{self.model} via OpenAI-compatible API (prompts {PROMPT_VERSION})"

    @staticmethod
    def _with_change(request: GenerationRequest) -> str:
        if not request.change_request:
            return request.requirements
        current = ", ".join(f.path for f in request.current_files) or "(none)"
        return f"{request.requirements}\n\nChange requested now:\n{request.change_request}\n\nCurrent files: {current}"

    @staticmethod
    def _messages(user: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": render("system")}, {"role": "user", "content": user}]

    @staticmethod
    def _complaint(answer: str, exc: Exception) -> list[dict[str, str]]:
        return [
            {"role": "assistant", "content": answer[:20_000]},
            {"role": "user", "content": f"That answer could not be read: {exc}. Answer again, in the format asked."},
        ]

    def _bad_output(self, exc: Exception) -> GenerationFailed:
        return GenerationFailed(
            f"model {self.model!r} gave an answer that does not follow the wire format after "
            f"{self.max_format_retries + 1} attempt(s): {str(exc)[:300]}; try another model"
        )

    def _ask_files(self, prompt_name: str, **values: str) -> tuple[WireProject, Usage]:
        """Ask for files with a prompt whose ``{{format}}`` describes the response mode used.

        Re-asks with the parser's complaint when the answer does not parse.
        """

        def build(mode: ResponseMode) -> list[dict[str, str]]:
            return self._messages(render(prompt_name, **values, format=self._format_text(mode)))

        text, usage, used = self._complete(build, WireProject)
        messages = build(used)
        for attempt in range(self.max_format_retries + 1):
            try:
                return parse_answer(text, used), usage
            except WireFormatError as exc:
                if attempt == self.max_format_retries:
                    raise self._bad_output(exc) from exc
                messages = [*messages, *self._complaint(text, exc)]
                text, spent, used = self._complete(_fixed(messages), WireProject, only=used)
                usage = usage + spent
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _format_text(mode: ResponseMode) -> str:
        return render("format_blocks") if mode == "file_blocks" else render("format_json")

    def _mode(self) -> ResponseMode:
        with _modes_lock:
            return _known_modes.get((self.base_url, self.model), "json_schema")

    def _complete(
        self,
        build: Callable[[ResponseMode], list[dict[str, str]]],
        shape: type[WireProject] | type[WirePlan],
        *,
        only: ResponseMode | None = None,
    ) -> tuple[str, Usage, ResponseMode]:
        """One paid call, falling back to a simpler response mode when the server refuses one (400).

        Args:
            build: The messages for a response mode (the prompt describes the format it asks for).
            shape: The wire model a structured answer follows.
            only: Use just this mode (for re-asking in the mode that answered).

        Returns:
            The answer text, what it cost and the mode that was used.
        """
        if only is not None:
            modes: list[ResponseMode] = [only]
        else:
            modes = list(MODES[MODES.index(self._mode()) :])  # a plan prompt asks for JSON in every mode
        for i, mode in enumerate(modes):
            fmt = response_format(mode, shape)
            try:
                create: Any = self._client().chat.completions.create  # dict messages, as servers accept
                response = create(
                    model=self.model,
                    messages=build(mode),
                    temperature=self.temperature,
                    max_tokens=self.max_output_tokens,
                    extra_headers=self._request_headers(),
                    **({"response_format": fmt} if fmt else {}),
                )
            except openai.BadRequestError as exc:
                said = str(getattr(exc, "message", "") or exc).lower()
                refused_format = any(m in said for m in _FORMAT_MARKERS)
                if refused_format and i + 1 < len(modes) and not any(m in said for m in _CONTEXT_MARKERS):
                    continue
                raise self._fail(exc) from exc
            except openai.OpenAIError as exc:
                raise self._fail(exc) from exc
            if fmt is not None or mode == "file_blocks":
                with _modes_lock:
                    _known_modes[(self.base_url, self.model)] = mode
            return self._answer(response), self._usage(response), mode
        raise AssertionError("unreachable")  # pragma: no cover

    def _answer(self, response: Any) -> str:
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

    @staticmethod
    def _usage(response: Any) -> Usage:
        usage = response.usage
        return Usage(
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            calls=1,
        )
