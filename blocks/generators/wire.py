"""The wire format an LLM fills, kept apart from our internal :class:`~core.files.GeneratedFile`.

Three ways to get it back, tried in this order (the first the server accepts is remembered per
endpoint and model):

1. ``json_schema`` structured output with :func:`strict_schema` of :class:`WireProject` (or
   :class:`WirePlan`): every object closes ``additionalProperties`` and lists every property as
   required, which is what strict structured-output modes accept.
2. JSON mode (``{"type": "json_object"}``): the same shape, described in the prompt.
3. Plain text in the *file-block* format, read by :func:`parse_file_blocks`::

       === FILE: path/to/file.ext ===
       ...content...
       === END FILE ===

   The parser is tolerant: ``=== END ===`` also closes a block, a Markdown code fence wrapped around
   a block's content is removed, and text outside blocks is ignored.

Everything here is untrusted output: :func:`to_generated` decodes it and builds files through
:func:`core.files.untrusted_file`; the path rules run later, in one place (``validate_files``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.files import GeneratedFile, untrusted_file

ResponseMode = Literal["json_schema", "json_object", "file_blocks"]
MODES: tuple[ResponseMode, ...] = ("json_schema", "json_object", "file_blocks")


class WireFormatError(ValueError):
    """The model's answer does not follow the wire format (the message says how)."""


class WireFile(BaseModel):
    """One file as the model writes it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Relative POSIX path inside the project, e.g. 'index.html'.")
    content: str = Field(description="The whole file: UTF-8 text, or base64 when encoding is 'base64'.")
    encoding: Literal["utf-8", "base64"] = Field(description="'utf-8' for text files, 'base64' for binary files.")
    action: Literal["add", "modify", "delete"] = Field(
        description="'add' for a new file, 'modify' to replace an existing one, 'delete' to remove it."
    )


class WireProject(BaseModel):
    """A whole answer: files and a short note."""

    model_config = ConfigDict(extra="forbid")

    files: list[WireFile] = Field(description="Every file of the answer.")
    notes: str = Field(description="One or two sentences about the result (may be empty).")


class PlannedFile(BaseModel):
    """One entry of a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Relative POSIX path of the file to write.")
    purpose: str = Field(description="What the file does and what it links to or imports.")


class WirePlan(BaseModel):
    """The plan of a larger app: the file list with purposes."""

    model_config = ConfigDict(extra="forbid")

    files: list[PlannedFile] = Field(description="Every file the app needs, entry page first.")
    notes: str = Field(description="Shared conventions every file must follow (ids, names, style).")


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON schema of ``model`` in the form strict structured-output modes accept.

    Every object gets ``additionalProperties: false`` and all its properties in ``required``;
    ``$defs`` are inlined and ``title``/``default`` keys dropped.
    """
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
            out = {k: walk(v) for k, v in node.items() if k not in ("title", "default")}
            if out.get("type") == "object":
                out["additionalProperties"] = False
                out["required"] = list(out.get("properties", {}))
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(raw)
    return result


def response_format(mode: ResponseMode, model: type[BaseModel]) -> dict[str, Any] | None:
    """The ``response_format`` argument for a mode (None for plain text)."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": model.__name__.lower(), "strict": True, "schema": strict_schema(model)},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


_FENCE = re.compile(r"^\s*```[^\n]*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)


def _json_text(text: str) -> str:
    """The JSON object inside an answer: fences removed, surrounding prose dropped."""
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group("body")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise WireFormatError("the answer contains no JSON object")
    return text[start : end + 1]


def parse_json_answer(text: str, model: type[BaseModel]) -> Any:
    """Parse a JSON answer (tolerating a code fence or prose around it) into ``model``.

    Raises:
        WireFormatError: With the parser's or validator's first complaint.
    """
    try:
        data = json.loads(_json_text(text))
    except json.JSONDecodeError as exc:
        raise WireFormatError(f"the answer is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise WireFormatError(f"the JSON does not match the schema at {where}: {first['msg']}") from exc


_BLOCK = re.compile(
    r"^[ \t]*={3,}[ \t]*FILE:[ \t]*(?P<path>[^\n]*?)[ \t]*={3,}[ \t]*\n"
    r"(?P<body>.*?)"
    r"^[ \t]*={3,}[ \t]*END(?:[ \t]+FILE)?[ \t]*={3,}[ \t]*$",
    re.DOTALL | re.MULTILINE,
)


def parse_file_blocks(text: str) -> WireProject:
    """Parse the file-block text format (tolerant; see the module docstring).

    Raises:
        WireFormatError: When the text holds no complete block.
    """
    files: list[WireFile] = []
    for m in _BLOCK.finditer(text):
        body = m.group("body")
        fenced = _FENCE.match(body)
        if fenced:
            body = fenced.group("body") + "\n"
        files.append(WireFile(path=m.group("path"), content=body, encoding="utf-8", action="add"))
    if not files:
        raise WireFormatError("the answer contains no '=== FILE: path ===' ... '=== END FILE ===' block")
    return WireProject(files=files, notes="")


def parse_answer(text: str, mode: ResponseMode) -> WireProject:
    """Parse an answer given in ``mode``."""
    if mode == "file_blocks":
        return parse_file_blocks(text)
    project: WireProject = parse_json_answer(text, WireProject)
    return project


def to_generated(project: WireProject) -> tuple[list[GeneratedFile], list[str]]:
    """Decode wire files into untrusted :class:`GeneratedFile` objects plus the paths to delete.

    Raises:
        WireFormatError: When a base64 file does not decode.
    """
    files: list[GeneratedFile] = []
    deleted: list[str] = []
    for wf in project.files:
        if wf.action == "delete":
            deleted.append(wf.path)
            continue
        if wf.encoding == "base64":
            try:
                content = base64.b64decode(wf.content, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise WireFormatError(f"file {wf.path!r} is marked base64 but does not decode: {exc}") from exc
        else:
            content = wf.content.encode("utf-8", errors="surrogatepass")
        files.append(untrusted_file(wf.path, content))
    return files, deleted
