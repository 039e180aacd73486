"""JSON logs, one object per line, each carrying the request id (issue #2, item 7)."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


def _encode(entry: dict[str, Any]) -> str:
    """One line of JSON; a value JSON cannot hold (a UUID, an exception) as its str().
    orjson: a line per request is a twentieth of the token endpoint's time with the
    standard library's encoder (issue #14)."""
    return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        # The `extra=` fields: a set difference in C rather than a loop over every attribute.
        for key in sorted(vars(record).keys() - _STANDARD_ATTRIBUTES):
            if not key.startswith("_"):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _encode(entry)


def configure_logging(level: str = "INFO") -> None:
    # Our lines carry no file or line number, so skip the stack walk that finds
    # them: it is a tenth of the token endpoint's time (the logging module's own
    # switch for this).
    logging._srcfile = None
    # Nor do they carry thread or process names: skip collecting them on every record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
