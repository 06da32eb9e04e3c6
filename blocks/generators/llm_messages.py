"""What the OpenAI-compatible generator says to a model, and how it gets an answer it can read.

Every request is the bundled system prompt plus one rendered user prompt (:mod:`blocks.generators.prompts`);
a prompt that asks for files describes the format of the response mode in use (``{{format}}``). An answer
that does not parse is sent back with the parser's complaint, up to ``retries`` times, in the mode that
answered (:func:`ask_parsed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from blocks.generators.base import GenerationRequest, Usage
from blocks.generators.llm_chat import Chat, MessageBuilder, Messages
from blocks.generators.prompts import render
from blocks.generators.wire import ResponseMode, WireFormatError, WirePlan, WireProject, parse_answer, parse_json_answer
from core.errors import GenerationFailed
from core.files import GeneratedFile

__all__ = [
    "ask_files",
    "ask_parsed",
    "ask_plan",
    "file_listing",
    "messages",
    "problem_listing",
    "with_change",
]

T = TypeVar("T")
_MAX_ECHO = 20_000


def messages(user: str) -> Messages:
    """The system prompt and one user message."""
    return [{"role": "system", "content": render("system")}, {"role": "user", "content": user}]


def format_text(mode: ResponseMode) -> str:
    """The prompt text that describes the answer format of a response mode."""
    return render("format_blocks") if mode == "file_blocks" else render("format_json")


def complaint(answer: str, exc: Exception) -> Messages:
    """The unreadable answer and the parser's complaint, to send back."""
    return [
        {"role": "assistant", "content": answer[:_MAX_ECHO]},
        {"role": "user", "content": f"That answer could not be read: {exc}. Answer again, in the format asked."},
    ]


def with_change(request: GenerationRequest) -> str:
    """The requirements, plus for a change run the change asked for and the current file list."""
    if not request.change_request:
        return request.requirements
    current = ", ".join(f.path for f in request.current_files) or "(none)"
    return f"{request.requirements}\n\nChange requested now:\n{request.change_request}\n\nCurrent files: {current}"


def file_listing(files: list[GeneratedFile]) -> str:
    """Files shown to the model for repair: each one's path and text."""
    shown = "\n\n".join(f"--- {f.path} ---\n{f.content.decode('utf-8', errors='replace')}" for f in files)
    return shown or "(the file does not exist yet: write it)"


def problem_listing(problems: dict[str, str]) -> str:
    """Check failures shown to the model for repair, one line each."""
    return "\n".join(f"- {path or '(project)'}: {msg}" for path, msg in sorted(problems.items()))


def ask_parsed(
    chat: Chat,
    build: MessageBuilder,
    shape: type[BaseModel],
    parse: Callable[[str, ResponseMode], T],
    retries: int,
) -> tuple[T, Usage]:
    """Ask, and re-ask with the parser's complaint until the answer parses (at most ``retries`` more calls).

    Raises:
        GenerationFailed: The answer still did not parse after the last re-ask.
    """
    text, usage, used = chat.complete(build, shape)
    sent = build(used)
    for attempt in range(retries + 1):
        try:
            return parse(text, used), usage
        except WireFormatError as exc:
            if attempt == retries:
                raise GenerationFailed(
                    f"model {chat.model!r} gave an answer that does not follow the wire format after "
                    f"{retries + 1} attempt(s): {str(exc)[:300]}; try another model"
                ) from exc
            sent = [*sent, *complaint(text, exc)]
            text, spent, used = chat.complete(_fixed(sent), shape, only=used)
            usage = usage + spent
    raise AssertionError("unreachable")  # pragma: no cover


def ask_files(chat: Chat, retries: int, prompt_name: str, **values: str) -> tuple[WireProject, Usage]:
    """Ask for files with a prompt whose ``{{format}}`` describes the response mode used."""

    def build(mode: ResponseMode) -> Messages:
        return messages(render(prompt_name, **values, format=format_text(mode)))

    return ask_parsed(chat, build, WireProject, parse_answer, retries)


def ask_plan(chat: Chat, retries: int, request: GenerationRequest) -> tuple[WirePlan, Usage]:
    """Ask for the file list of a larger app (JSON in every response mode)."""
    sent = messages(render("plan", project_name=request.project_name, requirements=request.requirements))
    return ask_parsed(chat, _fixed(sent), WirePlan, _parse_plan, retries)


def _parse_plan(text: str, mode: ResponseMode) -> WirePlan:
    plan: WirePlan = parse_json_answer(text, WirePlan)
    if not plan.files:
        raise WireFormatError("the plan lists no files")
    return plan


def _fixed(sent: Messages) -> MessageBuilder:
    """A message builder that gives the same messages whatever the mode (for re-asking)."""
    return lambda _mode: sent
