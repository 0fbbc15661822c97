"""The model's answer: its schema, strict validation, and one repair attempt before giving up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    NIT = "nit"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


SEVERITY_ORDER = (Severity.CRITICAL, Severity.MAJOR, Severity.MINOR, Severity.NIT)
RISK_ORDER = (Risk.LOW, Risk.MEDIUM, Risk.HIGH)


def _lower_case(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    path: str = Field(min_length=1)
    line: int = Field(ge=1)
    severity: Severity
    title: str = Field(min_length=1)
    explanation: str
    suggestion: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity_in_any_case(cls, value: Any) -> Any:
        return _lower_case(value)

    @field_validator("line", mode="before")
    @classmethod
    def _line_is_a_number(cls, value: Any) -> Any:
        # pydantic reads true as 1; "12" as 12 stays accepted, a model writes numbers as strings too.
        if isinstance(value, bool):
            raise ValueError("a line is a number, not true or false")
        return value

    @field_validator("suggestion", mode="before")
    @classmethod
    def _blank_suggestion_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ReviewReply(BaseModel):
    """The model's review: `findings` are the ones that read as findings; `unreadable_findings` counts
    the items of its list that did not (line 0, a range, an unknown severity, no explanation), so one bad
    item costs that item, not the review."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    summary: str
    risk: Risk
    findings: tuple[Finding, ...] = ()
    unreadable_findings: int = 0

    @model_validator(mode="before")
    @classmethod
    def _keep_the_readable_findings(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
            return data
        kept: list[Finding] = []
        for item in data["findings"]:
            try:
                kept.append(Finding.model_validate(item))
            except ValidationError:
                continue
        return {**data, "findings": kept, "unreadable_findings": len(data["findings"]) - len(kept)}

    @field_validator("risk", mode="before")
    @classmethod
    def _risk_in_any_case(cls, value: Any) -> Any:
        return _lower_case(value)


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """`review` is None when the reply could not be read even after repair: show `raw_text` as is."""

    raw_text: str
    review: ReviewReply | None
    repaired: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.review is not None


def parse_review_reply(text: str) -> ParsedReply:
    try:
        return ParsedReply(text, ReviewReply.model_validate_json(text))
    except ValidationError as error:
        first_error = error
    candidate = repair_json_text(text)
    if candidate is None:
        return ParsedReply(text, None, error=_describe(first_error))
    try:
        return ParsedReply(text, ReviewReply.model_validate_json(candidate), repaired=True)
    except ValidationError as error:
        return ParsedReply(text, None, error=_describe(error))


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


_JSON_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(?P<body>.*?)\n[ \t]*```", re.DOTALL)


def repair_json_text(text: str) -> str | None:
    """The likeliest JSON object in a reply that wrapped it in a fence or prose, with trailing commas
    removed; None if there is no balanced object at all."""
    fenced = _JSON_FENCE.search(text)
    candidate = outermost_json_object(fenced["body"] if fenced else text)
    return None if candidate is None else _without_trailing_commas(candidate)


def outermost_json_object(text: str) -> str | None:
    """The longest balanced top-level {...} in `text`, reading quotes only inside braces."""
    best: str | None = None
    depth = 0
    start = 0
    strings = _StringTracker()
    for index, char in enumerate(text):
        if strings.inside(char, active=depth > 0):
            continue
        if char == "{":
            start = index if depth == 0 else start
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0 and (best is None or index + 1 - start > len(best)):
                best = text[start : index + 1]
    return best


def _without_trailing_commas(text: str) -> str:
    kept: list[str] = []
    strings = _StringTracker()
    for index, char in enumerate(text):
        if not strings.inside(char) and char == "," and _next_visible(text, index + 1) in ("}", "]"):
            continue
        kept.append(char)
    return "".join(kept)


def _next_visible(text: str, index: int) -> str:
    while index < len(text) and text[index].isspace():
        index += 1
    return text[index : index + 1]


class _StringTracker:
    """Follows JSON string quoting one character at a time."""

    def __init__(self) -> None:
        self._in_string = False
        self._escaped = False

    def inside(self, char: str, *, active: bool = True) -> bool:
        """Whether `char` belongs to a string (its quotes included)."""
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif char == "\\":
                self._escaped = True
            elif char == '"':
                self._in_string = False
            return True
        if char == '"' and active:
            self._in_string = True
            return True
        return False
