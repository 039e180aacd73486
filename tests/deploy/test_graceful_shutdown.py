"""`pitpass serve --timeout-graceful-shutdown`: SIGTERM lets started requests finish, but
not forever, so systemd's TimeoutStopSec (deploy/systemd/pitpass@.service) is never
reached and the instance exits by itself."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.deploy.cluster import start_instance, started_request, stopped_at_exit
from tests.support import migrated_schema, server_env, wait_until_ready

# Well inside this: without the bound the instance waits on the stuck request forever.
EXIT_DEADLINE_SECONDS = 30


def test_a_request_unfinished_past_the_graceful_timeout_does_not_hold_the_instance(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path, {})
    migrated_schema(env["PITPASS_DATABASE_URL"])
    server = start_instance(tmp_path, env, "server", "--timeout-graceful-shutdown", "1")
    with stopped_at_exit([server]):
        wait_until_ready(server.base_url, server.process, server.log_path)
        # A client that sent half a body and went quiet: a request started, never finished.
        stuck = started_request(server, "/oauth2/token", b"grant_type=refresh_token")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=EXIT_DEADLINE_SECONDS) == -signal.SIGTERM
        with stuck, stuck.makefile("rb") as stream:
            stream.read()  # returns: the instance closed the connection (after uvicorn's 500)
        log = server.log_text()
        assert "timeout graceful shutdown exceeded" in log, log
        assert "Application shutdown complete" in log, log
