"""JSON bodies of the protocol's answers, encoded with orjson (issue #14).

The token endpoint is the hot path, and the standard library's encoder (the answer and
the log line) was a twentieth of its time under load (docs/benchmarks.md, the py-spy
breakdown). FastAPI's `ORJSONResponse` does this but is deprecated. orjson writes the
same bytes as Starlette's `JSONResponse` for the values these answers hold
(strings, integers, booleans, null, lists and objects of them): compact
separators, UTF-8 unescaped; tests/oauth/test_openid_unchanged.py compares them
byte for byte with answers captured before the change.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
