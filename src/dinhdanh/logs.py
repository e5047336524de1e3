"""Structured logs: one JSON object per line (or plain text), a request id on every line, and no
personal data.

``configure(json=True, level="INFO")`` gives the root logger one handler on stderr (the servers'
loggers, uvicorn's included, propagate to it). A JSON line holds ``time`` (ISO 8601, UTC, to the
millisecond), ``level``, ``logger``, ``message``, ``request_id`` (the request being served, from
the ``REQUEST_ID`` context variable that ``web.observability`` sets; absent outside a request) and
whatever the call passed as ``extra=``, plus ``exception`` when there is one. Lines written during
one turn of an event loop leave in one write at its end (``TurnHandler``); warnings and worse, and
lines from threads without a loop, at once.

The code already avoids logging personal data (officers' reads are recorded in the access log,
not in the process log). ``PersonalDataFilter`` is defence in depth, on the handler: in the
message, the extras and the traceback it masks

- 12-digit runs (personal identification numbers, PIDs) -> ``[pid]``;
- 9-digit runs (the old identity card numbers, CMND) -> ``[cmnd]``;
- MRZ-like runs, 30 or more of ``[A-Z0-9<]`` (a card's or passport's machine-readable zone) -> ``[mrz]``;
- a 6-digit number after ``code``, ``otp``, ``passcode``, ``totp``, ``pin`` or ``mã`` (activation
  codes, one-time passwords, passcodes) -> ``[code]``; an extra whose key names one is masked whole.

>>> mask("lookup 001085000001 by CMND 123456789, otp: 246810")
'lookup [pid] by CMND [cmnd], otp: [code]'
>>> mask("IDVNM0850000011001085000001<<<<")
'[mrz]'
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json as jsonlib
import logging
import re
import sys
import time
from contextvars import ContextVar

import orjson

__all__ = ["REQUEST_ID", "configure", "mask", "nothing_to_mask", "write_access", "JsonFormatter",
           "TextFormatter", "PersonalDataFilter", "TurnHandler"]

REQUEST_ID: ContextVar[str | None] = ContextVar("dinhdanh_request_id", default=None)

_MRZ = re.compile(r"[A-Z0-9<]{30,}")
_PID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
_CMND = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")
_CODE_WORDS = r"(?:pass)?code|otp|totp|pin|mã(?:\s+\w+){0,2}"
_CODE = re.compile(rf"(?i)(\b(?:{_CODE_WORDS})\b[^0-9A-Za-z\n]{{0,4}})[0-9]{{6}}(?![0-9])")
# extras whose key names a secret are masked whole; a key naming a code, when its value is 6 digits
_SECRET_KEY = re.compile(r"(?i)(?:^|_)(?:otp|totp|passcode|password|secret|pin)$")
_CODE_KEY = re.compile(r"(?i)(?:^|_)code$")
_SIX = re.compile(r"[0-9]{6}")

# LogRecord's own attributes: everything else on a record came from ``extra=``
# (and uvicorn's ``color_message``, the message again with terminal colours)
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id", "taskName", "color_message"}


# all of the above need 6 digits in a row or 30 MRZ characters: one search tells most lines are clean
_SUSPECT = re.compile(r"[0-9]{6}|[A-Z0-9<]{30}")


def mask(text: str) -> str:
    """``text`` with PIDs, CMND numbers, MRZ-like runs and codes after code words masked."""
    if not text or _SUSPECT.search(text) is None:
        return text
    text = _MRZ.sub("[mrz]", text)
    text = _PID.sub("[pid]", text)
    text = _CMND.sub("[cmnd]", text)
    return _CODE.sub(r"\1[code]", text)


def _mask_value(key: str, value):
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, (str, int)):
        if _SECRET_KEY.search(key) or (_CODE_KEY.search(key) and _SIX.fullmatch(str(value))):
            return "[masked]"
        if isinstance(value, str):
            return mask(value)
        if -100_000 < value < 100_000:
            return value  # fewer than 6 digits: nothing to mask
        masked = mask(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {str(k): _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask_value(key, v) for v in value]
    return mask(str(value))


_MASKED = "_dinhdanh_masked"  # on a record the filter has already seen, or that has nothing to mask


def nothing_to_mask(**fields) -> dict:
    """``extra=`` for a record whose message and fields the code builds only from values that cannot
    hold personal data (a method, a route template, a status, a duration): the filter leaves it as it
    is. The access line of every request (``web.observability``) is one: masking its four fields
    cost a sixth of what the line cost."""
    return {**fields, _MASKED: True}


class PersonalDataFilter(logging.Filter):
    """On a handler: the record's message rendered and masked (``msg``, no ``args`` left), its
    extras masked, its traceback rendered and masked, and its ``request_id`` set from the context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MASKED, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = mask(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and not key.startswith("_"):
                record.__dict__[key] = _mask_value(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        record.exc_info = None  # rendered (and masked) above; never rendered again unmasked
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        else:
            record.request_id = mask(str(record.request_id))
        setattr(record, _MASKED, True)
        return True


def _iso(created: float) -> str:
    return dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         getattr(record, "request_id", None) or REQUEST_ID.get(), _extras(record),
                         _exception(self, record))

    def line(self, created: float, level: str, logger: str, message: str, request_id: str | None,
             extras: dict, exception: str | None = None) -> str:
        """The line of a record with these values (``format``, and ``write_access``)."""
        out = {"time": _iso(created), "level": level, "logger": logger, "message": message}
        if request_id is not None:
            out["request_id"] = request_id
        for key, value in extras.items():
            if key not in out:
                out[key] = value
        if exception:
            out["exception"] = exception
        try:  # orjson: a tenth of the json module's time, UTF-8 as it is (names keep their diacritics)
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # what orjson refuses (an integer beyond 64 bits): the json module writes it
            return jsonlib.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message key=value ...`` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         getattr(record, "request_id", None) or REQUEST_ID.get(), _extras(record),
                         _exception(self, record))

    def line(self, created: float, level: str, logger: str, message: str, request_id: str | None,
             extras: dict, exception: str | None = None) -> str:
        """The line of a record with these values (``format``, and ``write_access``)."""
        shown = " ".join(f"{k}={v}" for k, v in extras.items())
        line = (f"{_iso(created)} {level:<7} {logger}"
                f"{f' [{request_id}]' if request_id else ''} {message}{f' {shown}' if shown else ''}")
        if exception:
            line += "\n" + exception
        return line


def _extras(record: logging.LogRecord) -> dict:
    """What the call passed as ``extra=`` (the record's attributes that are not a LogRecord's own)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback as text (masked when rendered here: the filter renders and masks it)."""
    if record.exc_text:
        return record.exc_text
    if record.exc_info:
        return mask(formatter.formatException(record.exc_info))
    return None


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class TurnHandler(logging.StreamHandler):
    """A stream handler whose lines below WARNING, written on a thread running an event loop, leave
    in one write at the end of the loop's turn: a server answering eight requests in a turn wrote
    eight access lines in eight system calls (JWKS, the cheapest answer, 2-17% faster without
    them). Any other line (a WARNING or worse, a line from a thread without a loop) is written at
    once, after those waiting. What a turn has written is on the stream before the loop does
    anything else; a process killed within the turn loses that turn's lines, as it would have lost
    the lines it had not reached. ``flush`` (and ``logging.shutdown``, at exit) writes what waits."""

    def __init__(self, stream=None):
        super().__init__(stream)
        self._waiting: list[str] = []
        self._flush_on = None  # the loop a flush is scheduled on

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging's own contract: a bad record is reported, not raised
            self.handleError(record)
            return
        self.write(line, record.levelno)

    def write(self, line: str, levelno: int) -> None:
        """``line`` (formatted) at ``levelno``: kept for the end of the turn, or written now."""
        self.acquire()
        try:
            self._waiting.append(line + self.terminator)
            loop = _running_loop() if levelno < logging.WARNING else None
            if loop is None:
                self.flush()
            elif self._flush_on is not loop:
                self._flush_on = loop
                loop.call_soon(self.flush)
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._flush_on = None
            if self._waiting and self.stream is not None:
                text = "".join(self._waiting)
                self._waiting.clear()
                try:
                    self.stream.write(text)
                except Exception:  # noqa: BLE001 - a closed or broken stream: as StreamHandler, reported
                    self.handleError(logging.makeLogRecord({"msg": "lines lost: the log stream failed"}))
            super().flush()
        finally:
            self.release()


def write_access(logger: logging.Logger, method: str, route: str, status: int, duration_ms: float) -> None:
    """A request's access line (``web.observability``): what ``logger.info("%s %s %d", ...)`` with
    ``nothing_to_mask(method=..., route=..., status=..., duration_ms=...)`` writes. When the line
    would reach only the handler ``configure`` made, it is formatted by that handler's formatter
    (``line``, as ``format`` does) and handed to it, without a ``LogRecord`` and the logging
    module's dispatch: in a server answering JWKS the line cost about 33 µs that way, a third of
    the answer. Anywhere else (another handler on the way, a test's), it goes through logging."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = {"method": method, "route": route, "status": status, "duration_ms": duration_ms}
    handler = _only_handler(logger)
    if handler is None:
        logger.info("%s %s %d", method, route, status, extra=nothing_to_mask(**fields))
        return
    handler.write(handler.formatter.line(time.time(), "INFO", logger.name, f"{method} {route} {status:d}",
                                         REQUEST_ID.get(), fields), logging.INFO)


def _only_handler(logger: logging.Logger) -> TurnHandler | None:
    """The handler ``configure`` made, if an INFO line of ``logger`` reaches it and nothing else."""
    if logger.filters:
        return None
    found = None
    current = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or not getattr(handler, _HANDLER_MARK, False):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found.level > logging.INFO or not isinstance(found, TurnHandler) or \
            not isinstance(found.formatter, JsonFormatter | TextFormatter):
        return None
    return found


_HANDLER_MARK = "_dinhdanh_handler"
# the servers' own loggers: their handlers go, they propagate to the root's one handler
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


def configure(json: bool = True, level: str | int = "INFO", stream=None) -> logging.Handler:
    """The root logger writes to ``stream`` (stderr) through one masked handler, JSON lines with
    ``json``, else text; uvicorn's loggers propagate to it. Calling it again replaces the handler."""
    # what neither formatter writes, not looked up for every record (the logging HOWTO's
    # "Optimization"): the caller's file and line, the thread, the process and its name
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            handler.flush()  # the lines it holds go out before it does
            root.removeHandler(handler)
    handler = TurnHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(PersonalDataFilter())
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else logging.getLevelName(str(level).upper()))
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
