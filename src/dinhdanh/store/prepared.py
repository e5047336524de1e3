"""Hot statements run on the driver's cursor, inside the unit of work's transaction.

A ``Prepared`` is a Core statement (the tables stay the one description of the schema) compiled
once per dialect, with the columns it binds fixed. ``run(conn, params)`` converts the parameters
with the statement's own type processors, executes the SQL on the DBAPI connection under ``conn``
(same transaction: SQLAlchemy's connection begins and commits it) and converts the rows back with
the result columns' processors. What it saves is SQLAlchemy's execution machinery, 30-50 µs a
statement, which is most of a token's unit of work when the statement itself costs 5-10 µs on
SQLite: it is for the statements of the hottest units (the token endpoint), not a second way to
run ordinary ones.

Driver errors come out as SQLAlchemy's (``store.engine.driver_error``), so that the unit of work's
translation of busy and unavailable databases (``unit_of_work.translated``) sees them as it sees
any other statement's.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import sqlalchemy as sa

from dinhdanh.store.engine import driver_error


def _row_class(names: list[str]):
    """A named tuple with ``_mapping``, as a ``sa.Row`` offers."""
    base = namedtuple("Row", names, rename=True)
    return type("Row", (base,), {"__slots__": (), "_mapping": property(lambda self: self._asdict())})


_CALL = object()  # a processor that must see None itself


def _of_none(process):
    """What ``process`` binds for None (the same every time), or ``_CALL`` if it refuses None."""
    try:
        return process(None)
    except Exception:  # noqa: BLE001 - a type that refuses None keeps refusing it at each bind
        return _CALL


class _Compiled:
    __slots__ = ("sql", "names", "processors", "positional", "row", "result_processors", "defaults")
    # processors: (position, processor, its value for None) of the bound values that have one;
    # result_processors: (position, processor) for the row's columns (most values go to the driver
    # and come back as they are)

    def __init__(self, statement, dialect, keys: list[str] | None):
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names = list(compiled.positiontup or compiled.bind_names.values())
        if any(bind.expanding or bind.callable for bind in compiled.binds.values()):
            raise ValueError("a prepared statement binds plain values (no IN lists, no callables)")
        # the values written into the statement (``column == "sig"``), bound like the caller's
        self.defaults = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        binds = compiled._bind_processors  # what SQLAlchemy's execution would apply, per bind name
        # most columns of a hot row are NULL (an access token's claims, amr, acr...), and a type's
        # processor gives the same for None every time: computed here once
        self.processors = [(i, binds[name], _of_none(binds[name])) for i, name in enumerate(self.names)
                           if binds.get(name) is not None]
        columns = compiled._result_columns
        if columns:
            self.row = _row_class([c[0] for c in columns])
            found = [(i, c[3]._cached_result_processor(dialect, None)) for i, c in enumerate(columns)]
            self.result_processors = [(i, p) for i, p in found if p is not None]
        else:
            self.row, self.result_processors = None, []


class Prepared:
    """``statement`` with bind parameters named ``keys`` (an INSERT's columns; for other statements
    the ``sa.bindparam`` names), run on the driver's cursor of a unit's connection."""

    def __init__(self, statement, keys: list[str] | None = None):
        self.statement = statement
        self.keys = keys
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = _Compiled(self.statement, dialect, self.keys)
        return found

    def run(self, conn: sa.Connection, params: dict[str, Any]) -> tuple[list, int]:
        """Execute with ``params``; returns (rows, rowcount). Rows are named tuples, their values
        converted as SQLAlchemy would (dates, JSON, booleans)."""
        raw, count = self._execute(conn, params)
        return [self.convert(conn, got) for got in raw], count

    def first(self, conn: sa.Connection, params: dict[str, Any]):
        """The first row, or None."""
        raw, _ = self._execute(conn, params)
        return self.convert(conn, raw[0]) if raw else None

    def first_raw(self, conn: sa.Connection, params: dict[str, Any]) -> tuple | None:
        """The first row as the driver gave it (nothing converted), or None: for a caller that
        keeps what it made of an identical row (``convert`` makes the row)."""
        raw, _ = self._execute(conn, params)
        return raw[0] if raw else None

    def convert(self, conn: sa.Connection, got: tuple):
        """A row from the driver's values, converted as SQLAlchemy would."""
        compiled = self._compiled(conn.dialect)
        values = list(got)
        for i, process in compiled.result_processors:
            values[i] = process(values[i])
        return compiled.row._make(values)

    def rowcount(self, conn: sa.Connection, params: dict[str, Any]) -> int:
        return self._execute(conn, params)[1]

    def bound(self, dialect, params: dict[str, Any]) -> tuple[str, list | dict]:
        """The SQL for ``dialect`` and ``params`` converted as SQLAlchemy would bind them: for a
        driver SQLAlchemy does not hold (the bulk load's writer)."""
        compiled = self._compiled(dialect)
        defaults = compiled.defaults
        values = [params[name] if name in params else defaults.get(name) for name in compiled.names]
        for i, process, none in compiled.processors:
            value = values[i]
            values[i] = process(value) if value is not None or none is _CALL else none
        return compiled.sql, values if compiled.positional else dict(zip(compiled.names, values))

    def _execute(self, conn: sa.Connection, params: dict[str, Any]) -> tuple[list | tuple, int]:
        dialect = conn.dialect
        compiled = self._compiled(dialect)
        _, bound = self.bound(dialect, params)
        dbapi = conn.connection.dbapi_connection
        cursor = dbapi.cursor()
        try:
            cursor.execute(compiled.sql, bound)
            raw = cursor.fetchall() if compiled.row is not None else ()
            count = cursor.rowcount
        except dialect.loaded_dbapi.Error as exc:
            raise driver_error(dialect, compiled.sql, bound, exc) from exc
        finally:
            cursor.close()
        return raw, count
