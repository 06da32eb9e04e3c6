"""``OpenAICompatibleGenerator``: code generation through any OpenAI chat-completions endpoint.

OpenAI, Azure OpenAI (through its ``/openai/v1`` endpoint) and local servers (Ollama, vLLM, llama.cpp,
LM Studio) all speak the protocol; ``base_url`` picks one. Built on the real ``openai`` SDK: the calls, their
retries (the SDK's own, ``max_retries``), the response-mode fallback and the cost of each call are in
:mod:`blocks.generators.llm_chat`; what is said to the model, and re-asking once (``max_format_retries``)
when an answer does not parse, in :mod:`blocks.generators.llm_messages`.

Size rule: requirements up to ``plan_threshold_chars`` (default 2,000 characters) are generated in one
call — a small static app fits one answer. Longer requirements, which describe larger apps, get a plan
call (file list with purposes), then one call per file; ``tasks.generate`` runs those as mapped Prefect
tasks, each cached and retried on its own. Change runs always use one call.

Secrets: the API key is a ``SecretStr`` unwrapped only when the SDK client is built; errors never carry
provider text for 401/403 (OpenAI echoes part of the key there) and other provider text is redacted.
"""

from __future__ import annotations

import hashlib
import os

import openai
from pydantic import Field, PrivateAttr, SecretStr, field_validator

from blocks.generators.base import GenerationRequest, GenerationResult, Generator, Usage
from blocks.generators.llm_chat import PROVIDER, Chat
from blocks.generators.llm_messages import ask_files, ask_plan, file_listing, problem_listing, with_change
from blocks.generators.prompts import PROMPT_VERSION, prompts_digest
from blocks.generators.wire import WirePlan, WireProject, to_generated
from core.errors import ConfigError, GenerationFailed, ProviderRejected
from core.files import GeneratedFile
from core.redaction import register_secret

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MODEL", "OpenAICompatibleGenerator"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


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

    _chat_obj: Chat | None = PrivateAttr(default=None)

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

    def worst_case_tokens(self) -> int:
        """``max_output_tokens`` per answer, for the generation and each repair round."""
        return self.max_output_tokens * (1 + self.max_repair_rounds)

    def fingerprint(self) -> str:
        """Configuration (no secrets) plus the exact bytes of the bundled prompts."""
        return hashlib.sha256(f"{super().fingerprint()}:{prompts_digest()}".encode()).hexdigest()

    def _chat(self) -> Chat:
        """The SDK client for this Block's endpoint and model (built once; the key is unwrapped here only)."""
        if self._chat_obj is None:
            register_secret(self.api_key)
            for value in self.extra_headers.values():
                register_secret(value)
            client = openai.OpenAI(
                api_key=self.api_key.get_secret_value(),
                base_url=self.base_url,
                timeout=self.request_timeout,
                max_retries=self.max_retries,
                default_headers={name: value.get_secret_value() for name, value in self.extra_headers.items()},
            )
            self._chat_obj = Chat(
                client,
                base_url=self.base_url,
                model=self.model,
                temperature=self.temperature,
                max_output_tokens=self.max_output_tokens,
                secret=self.api_key.get_secret_value(),
            )
        return self._chat_obj

    # --- the port ----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """List the endpoint's models (free): proves the URL, the key and that the model exists.

        Raises:
            AuthFailed: The key was rejected.
            ProviderRejected: The model is not among those listed.
            ProviderUnavailable: The endpoint cannot be reached.
        """
        models = self._chat().list_models()  # None: the server has no /models; the first call will tell
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
        project, usage = self._ask("generate", project_name=request.project_name, requirements=with_change(request))
        files, deleted = to_generated(project)
        return GenerationResult(files=files, deleted=deleted, usage=usage, label=self._label())

    def plan(self, request: GenerationRequest) -> tuple[WirePlan, Usage]:
        """Ask for the file list of a larger app (one call)."""
        return ask_plan(self._chat(), self.max_format_retries, request)

    def generate_file(self, request: GenerationRequest, plan: WirePlan, path: str) -> tuple[GeneratedFile, Usage]:
        """Write one planned file (one call).

        Raises:
            GenerationFailed: When the answer does not contain that file.
        """
        purpose = next((p.purpose for p in plan.files if p.path == path), "")
        listing = "\n".join(f"- {p.path}: {p.purpose}" for p in plan.files)
        project, usage = self._ask(
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
        project, usage = self._ask(
            "repair", requirements=request.requirements, problems=problem_listing(problems), files=file_listing(files)
        )
        fixed, deleted = to_generated(project)
        return GenerationResult(files=fixed, deleted=deleted, usage=usage, label="repair")

    # --- helpers -----------------------------------------------------------------------------------
    def _ask(self, prompt_name: str, **values: str) -> tuple[WireProject, Usage]:
        return ask_files(self._chat(), self.max_format_retries, prompt_name, **values)

    def _label(self) -> str:
        return f"{self.model} via OpenAI-compatible API (prompts {PROMPT_VERSION})"
