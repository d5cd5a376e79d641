"""Log output: lines for people, or one JSON object per line (``--log-format json``).

A JSON line carries the fields a log search filters on when the call gave them
(``extra={"projection": ..., "position": ...}``), and the correlation id in effect
when the line was logged, so one request's lines can be pulled from many processes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from eventstore import current_correlation

from ._output import to_jsonable

#: Fields copied from a record's ``extra`` into the JSON line when present.
FIELDS = (
    "projection",
    "slot",
    "position",
    "stream_id",
    "event_id",
    "event_type",
    "correlation_id",
    "causation_id",
    "saga_id",
    "relay",
)
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = to_jsonable(value)
        if "correlation_id" not in line:
            ids = current_correlation()
            if ids is not None:
                line["correlation_id"] = ids.correlation_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler
