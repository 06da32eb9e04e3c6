"""The wire format: strict schema, tolerant parsers, decoding into untrusted files."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from blocks.generators.wire import (
    WireFormatError,
    WirePlan,
    WireProject,
    parse_answer,
    parse_file_blocks,
    parse_json_answer,
    response_format,
    strict_schema,
    to_generated,
)
from core.errors import PathRuleViolation


def _objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found.extend(_objects(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_objects(item))
    return found


@pytest.mark.parametrize("model", [WireProject, WirePlan])
def test_strict_schema_closes_every_object_and_requires_every_property(model: type) -> None:
    schema = strict_schema(model)
    objects = _objects(schema)
    assert len(objects) == 2  # the answer and one file entry
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text and '"default"' not in text


def test_schema_lists_encodings_and_actions() -> None:
    file_schema = strict_schema(WireProject)["properties"]["files"]["items"]
    assert file_schema["properties"]["encoding"]["enum"] == ["utf-8", "base64"]
    assert file_schema["properties"]["action"]["enum"] == ["add", "modify", "delete"]


def test_response_formats_per_mode() -> None:
    fmt = response_format("json_schema", WireProject)
    assert fmt and fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert response_format("json_object", WireProject) == {"type": "json_object"}
    assert response_format("file_blocks", WireProject) is None


def test_json_answer_tolerates_a_fence_and_prose() -> None:
    body = {"files": [{"path": "a.txt", "content": "x", "encoding": "utf-8", "action": "add"}], "notes": ""}
    text = "Sure! Here it is:\n```json\n" + json.dumps(body) + "\n```\n"
    project = parse_json_answer(text, WireProject)
    assert [f.path for f in project.files] == ["a.txt"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("no json here", "no JSON object"),
        ('{"files": [', "no JSON object"),
        ('{"files": [}', "not valid JSON"),
        ('{"files": [{"path": "a"}], "notes": ""}', "files.0.content"),
        ('{"files": [], "notes": "", "extra": 1}', "extra"),
    ],
)
def test_json_answer_errors_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(WireFormatError, match=complaint):
        parse_json_answer(text, WireProject)


def test_file_blocks_are_parsed_tolerantly() -> None:
    text = (
        "Intro text that is ignored.\n"
        "=== FILE: index.html ===\n<h1>Hi</h1>\n=== END FILE ===\n"
        "between blocks\n"
        "=====  FILE:  js/app.js  =====\n```js\nconsole.log(1);\n```\n=== END ===\n"
    )
    project = parse_file_blocks(text)
    assert [(f.path, f.content) for f in project.files] == [
        ("index.html", "<h1>Hi</h1>\n"),
        ("js/app.js", "console.log(1);\n"),
    ]
    assert parse_answer(text, "file_blocks").files == project.files


def test_file_blocks_without_a_complete_block_fail() -> None:
    with pytest.raises(WireFormatError, match="FILE"):
        parse_file_blocks("=== FILE: a.txt ===\nnever closed")


def test_to_generated_decodes_base64_and_collects_deletes() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00"
    project = WireProject.model_validate(
        {
            "files": [
                {"path": "a.txt", "content": "héllo", "encoding": "utf-8", "action": "add"},
                {"path": "i.png", "content": base64.b64encode(png).decode(), "encoding": "base64", "action": "modify"},
                {"path": "old.js", "content": "", "encoding": "utf-8", "action": "delete"},
            ],
            "notes": "",
        }
    )
    files, deleted = to_generated(project)
    assert {f.path: f.content for f in files} == {"a.txt": "héllo".encode(), "i.png": png}
    assert deleted == ["old.js"]


def test_bad_base64_is_named() -> None:
    project = WireProject.model_validate(
        {"files": [{"path": "i.png", "content": "@@@", "encoding": "base64", "action": "add"}], "notes": ""}
    )
    with pytest.raises(WireFormatError, match=r"i\.png"):
        to_generated(project)


def test_symlink_like_entries_cannot_be_expressed_and_paths_stay_untrusted() -> None:
    project = WireProject.model_validate(
        {"files": [{"path": "../x", "content": "", "encoding": "utf-8", "action": "add"}], "notes": ""}
    )
    files, _ = to_generated(project)  # decoding does not judge paths; validate_files does, in one place
    from core.files import validate_files

    with pytest.raises(PathRuleViolation, match=r"\.\./x"):
        validate_files(files)
