"""The ledger as CSV, with text cells kept from being read as spreadsheet formulas.

Channel names and people's display names come from chat platforms, where anyone may choose them; the
admin who exports the ledger opens it in Excel or LibreOffice Calc, which run a cell beginning with `=`
as a formula (HYPERLINK, WEBSERVICE, DDE), so such a name is written with a leading single quote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence

from adapters.web.console.queries import LedgerRow
from bot.domain import usd_string

CSV_FIELDS = ("id", "started_at", "channel", "person", "kind", "model", "status", "prompt_tokens", "cached_tokens",
              "completion_tokens", "reasoning_tokens", "web_searches", "cost_usd", "channel_name", "person_name")
# The columns whose cells this module computes as numbers; every other column is text.
CSV_NUMBER_FIELDS = frozenset({"id", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens",
                               "web_searches", "cost_usd"})
# OWASP's list of the first characters that make a spreadsheet read a cell as a formula, and their full-width
# forms, which spreadsheets set up for Japanese and Chinese input read as the same operators.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def formula_safe(text: str) -> str:
    """`text` as a cell a spreadsheet shows as text: with a single quote in front when it begins, after any
    white space, with `=`, `+`, `-`, `@` (or their full-width forms), a tab or a carriage return; unchanged
    otherwise (the empty string included).

    The rule and the quote are OWASP's, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection):
    ensure no cell begins with those characters, by prepending a single quote. Leading white space is looked
    past because importers trim it (LibreOffice Calc's "Trim spaces", Google Sheets), which would leave the
    formula first. The quote shows in the cell (the text is not silently changed); quoting of separators and
    double quotes is left to the csv module."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS) else text


def csv_document(fields: Sequence[str], rows: Iterable[Sequence[object]],
                 number_fields: Collection[str] = frozenset(), *, header: bool = True) -> str:
    """A CSV document (RFC 4180 quoting by the stdlib csv module, CRLF line ends): the `fields` header
    (unless `header` is False: a later part of a document sent in parts), then `rows`, each as long as
    `fields`. A cell in a column named in `number_fields` is written as is (a negative number we computed
    stays a number); any other cell is text, `str()` of it passed through
    `formula_safe`, so a column added later is guarded unless declared a number. Raises ValueError for a
    row of the wrong length."""
    numbers = [field in number_fields for field in fields]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(fields)
    for row in rows:
        writer.writerow([cell if number else formula_safe(str(cell))
                         for cell, number in zip(row, numbers, strict=True)])
    return buffer.getvalue()


def ledger_csv(rows: Iterable[LedgerRow], *, header: bool = True) -> str:
    """The ledger rows as the console's CSV download: CSV_FIELDS, money as exact dollars (`0.0016`),
    `started_at` ISO 8601 naive UTC, names as the platform last gave them (empty when unknown). `header=False`
    for every page of the download but its first."""
    return csv_document(CSV_FIELDS, ((
        r.id, r.started_at.isoformat(), r.channel, r.person, r.kind, r.model, r.status, r.prompt_tokens,
        r.cached_tokens, r.completion_tokens, r.reasoning_tokens, r.web_searches, usd_string(r.cost_nanos),
        r.channel_name, r.person_name) for r in rows), CSV_NUMBER_FIELDS, header=header)


# Ledger rows per page of the CSV download: a page is read, written as CSV and sent before the next is read.
# A 200,000-row download held the event loop for at most 0.24 s at a time here (2.1 s when built whole).
CSV_PAGE_ROWS = 5_000


async def ledger_csv_parts(first: list[LedgerRow],
                           read: Callable[..., Awaitable[list[LedgerRow]]]) -> AsyncIterator[bytes]:
    """The CSV download in parts, UTF-8: the header and `first` (a page of CSV_PAGE_ROWS rows at most),
    then each page `read(limit=CSV_PAGE_ROWS, after=last row of the page before)` returns, until one is
    short. Raises what `read` raises."""
    page, header = first, True
    while True:
        yield ledger_csv(page, header=header).encode()
        if len(page) < CSV_PAGE_ROWS:
            return
        page, header = await read(limit=CSV_PAGE_ROWS, after=page[-1]), False
