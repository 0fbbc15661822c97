"""Hot-path statements compiled once per database dialect and run on the transaction's DBAPI cursor.

Every answer runs 12 statements on SQLite (claim 3, reserve 3, settle 6) and 10 on PostgreSQL, where
data-modifying CTEs make reserving's INSERT and UPDATE one statement, and settling's close and ledger row one.
Through `Connection.execute` each pays SQLAlchemy's execution machinery (compiled-cache lookup, execution
context, result proxy, events): on SQLite 10-20 µs on top of the 2-3 µs sqlite3 itself takes for the same
statement, measured with one `UPDATE messages SET status = ? WHERE id = ?` in a loop. A `Precompiled`
statement keeps, per dialect and per set of given parameter names, the SQL text SQLAlchemy rendered, the bound
parameters in their order with their types' bind processors (so values are stored exactly as SQLAlchemy stores
them: SQLite's DATETIME text, for one), the Python-side column defaults of an INSERT, and the result columns'
processors; running it is one `cursor.execute` on the connection's own DBAPI connection, inside its
transaction.

Errors are SQLAlchemy's: a DBAPI error comes out as the `sqlalchemy.exc.DBAPIError` subclass
`Connection.execute` would raise (OperationalError, IntegrityError, ...), and a lost connection
invalidates the pool as there: no connection made before it is handed out again.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Insert, Select, exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None
# A result row read by column name (`row.status`): SQLAlchemy's Row, or the named tuple `Precompiled` returns.
ResultRow = Any


class Prelude(NamedTuple):
    """A one-row select for a transaction to run inside its first statement (locks it must take before any
    other), and its parameters."""

    statement: Select
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Rendered:
    """One statement as one dialect runs it, for one set of parameter names."""

    sql: str
    names: tuple[str, ...]  # bound parameters, in the order the SQL takes them
    binds: tuple[Processor, ...]
    defaults: Mapping[str, Callable[[], Any]]  # what a parameter left out takes: a literal, a column default
    row: type | None  # a named tuple of the result columns; None when the statement returns no rows
    results: tuple[Processor, ...]


class Precompiled:
    """A Core statement (select, insert, update; with RETURNING or not) run without SQLAlchemy's per-call
    execution work. Build it once, at import; call `rows`, `first`, `one`, `scalar` or `run` with the
    transaction's `Connection` and a dict of parameters (bind-parameter names, or column keys for INSERT/UPDATE values).

    Rows are named tuples of the result columns (`row.scope_key`, `row._asdict()`). Raises KeyError for a
    parameter the statement needs and nobody gave (no column default either), ValueError at the first run of
    a statement with an expanding IN (give one bound parameter per value instead), and
    `sqlalchemy.exc.DBAPIError` subclasses for what the database refused."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._rendered: dict[tuple[str, frozenset[str]], _Rendered] = {}

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row the statement returns, as named tuples."""
        rendered = self._render(connection.dialect, params)
        cursor = self._execute(connection, rendered, params)
        try:
            if rendered.row is None:
                return []
            make, processors = rendered.row._make, rendered.results
            return [make(value if process is None else process(value)
                         for value, process in zip(row, processors, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row, or None."""
        rows = self.rows(connection, params)
        return rows[0] if rows else None

    def one(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """The only row; raises `sqlalchemy.exc.NoResultFound` or `MultipleResultsFound` otherwise."""
        rows = self.rows(connection, params)
        if not rows:
            raise exc.NoResultFound(f"no row from: {self.statement}")
        if len(rows) > 1:
            raise exc.MultipleResultsFound(f"{len(rows)} rows from: {self.statement}")
        return rows[0]

    def scalar(self, connection: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first column of the first row, or None."""
        row = self.first(connection, params)
        return None if row is None else row[0]

    def run(self, connection: Connection, params: Mapping[str, Any]) -> None:
        """Run a statement whose rows (if any) nobody reads."""
        self._execute(connection, self._render(connection.dialect, params), params).close()

    def _execute(self, connection: Connection, rendered: _Rendered, params: Mapping[str, Any]) -> Any:
        values = tuple(_value(params, name, rendered) if process is None else process(_value(params, name, rendered))
                       for name, process in zip(rendered.names, rendered.binds, strict=True))
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(rendered.sql, values)
        except connection.dialect.loaded_dbapi.Error as error:
            cursor.close()
            lost = connection.dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:  # as Connection.execute does: every connection made before now is renewed, then this one
                connection.engine.pool._invalidate(connection.connection, error)
                connection.invalidate(error)
            raise exc.DBAPIError.instance(rendered.sql, values, error, connection.dialect.loaded_dbapi.Error,
                                          connection_invalidated=lost, dialect=connection.dialect) from error
        return cursor

    def _render(self, dialect: Dialect, params: Mapping[str, Any]) -> _Rendered:
        key = (dialect.name, frozenset(params))
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._rendered[key] = _render(self.statement, dialect, key[1])
        return rendered


def _value(params: Mapping[str, Any], name: str, rendered: _Rendered) -> Any:
    if name in params:
        return params[name]
    if (default := rendered.defaults.get(name)) is not None:
        return default()
    raise KeyError(f"{name!r} is needed by: {rendered.sql}")


def _render(statement: ClauseElement, dialect: Dialect, names: frozenset[str]) -> _Rendered:
    if not dialect.positional:
        raise ValueError(f"{dialect.name}'s parameter style {dialect.paramstyle!r} is not positional")
    compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
    if expanding := [name for name, bind in compiled.binds.items() if bind.expanding]:
        # An expanding IN is rendered anew for each list it gets: give it one bound parameter per value.
        raise ValueError(f"expanding parameters {expanding} cannot be precompiled")
    order = tuple(compiled.positiontup or ())
    binds = tuple(compiled._bind_processors.get(name) for name in order)
    # Values written into the statement (`status == "active"`) are bound parameters that carry their value.
    defaults: dict[str, Callable[[], Any]] = {
        name: (lambda value=bind.effective_value: value) for name in order
        if not (bind := compiled.binds[name]).required and name not in names}
    if isinstance(statement, Insert):
        for column in statement.table.columns:  # type: ignore[attr-defined]
            default = column.default
            if default is None or column.key in names or column.key not in order:
                continue
            if default.is_scalar:
                defaults[column.key] = lambda value=default.arg: value
            elif default.is_callable:
                defaults[column.key] = lambda make=default.arg: make(None)
    columns = list(getattr(statement, "exported_columns", ()))
    row = namedtuple("Row", [column.key for column in columns]) if columns else None  # type: ignore[misc]  # noqa: PYI024
    results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return _Rendered(str(compiled), order, binds, defaults, row, results)
