"""Serve the floor as `pitpass serve` serves Pitpass: uvicorn on uvloop with Pitpass's
own HTTP/1.1 protocol (serving.py: httptools, one write per small answer), no `server`
header, no access log. The harness starts it from this folder: `python serve.py PORT`.
serving.py reads Pitpass's settings for its header bounds: PITPASS_DATA_DIR keeps the
development key they may create inside this folder."""

from __future__ import annotations

import sys

import uvicorn

from pitpass.serving import BoundedHttpToolsProtocol

if __name__ == "__main__":
    uvicorn.run(
        "app:app",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http=BoundedHttpToolsProtocol,
        server_header=False,
        access_log=False,
        log_level="warning",
    )
