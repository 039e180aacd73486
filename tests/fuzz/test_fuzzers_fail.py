"""The fuzzers can fail (issue #11, acceptance: "a deliberate 500 in any handler makes them
fail"): for every route of the application, its handler is made to raise, and the fuzzer
that owns the route (tests/fuzz/harness.owner_of) must report the 500.

Together with each fuzzer's own check that it reached every route it owns, this is the
proof that no handler can start answering 500 unnoticed.
"""

from __future__ import annotations

from tests.conftest import Site
from tests.fuzz.harness import (
    deliberate_500,
    fails_with_a_500,
    owner_of,
    recorder_for,
    route_table,
)
from tests.fuzz.test_api_fuzz import EXAMPLES_PER_CALLER, prepare_api_fuzzer
from tests.fuzz.test_pages_fuzz import prepare_pages_fuzzer
from tests.fuzz.test_protocol_fuzz import (
    CORE,
    MEMBER_ENDPOINTS,
    fuzz_endpoint,
    prepare_protocol_fuzzer,
)


def owned_by(site: Site, owner: str) -> list[str]:
    names = sorted(name for name in route_table(site.app).values() if owner_of(name) == owner)
    assert names, f"no route for the {owner} fuzzer"
    return names


def test_a_500_in_any_api_handler_fails_schemathesis(sqlite_site: Site) -> None:
    fuzzer = prepare_api_fuzzer(sqlite_site, recorder_for(sqlite_site))
    for name in owned_by(sqlite_site, "api"):
        with deliberate_500(sqlite_site.app, name):
            fails_with_a_500(
                name, lambda name=name: fuzzer.run(EXAMPLES_PER_CALLER, only=name.__eq__)
            )


def test_a_500_in_any_protocol_handler_fails_the_protocol_fuzzer(sqlite_site: Site) -> None:
    fuzzer = prepare_protocol_fuzzer(sqlite_site)
    endpoints = {f"{e.method} {e.path}": e for e in CORE + MEMBER_ENDPOINTS}
    for name in owned_by(sqlite_site, "protocol"):
        fuzzer.known.renew()  # before the fault: renewing uses the token endpoint
        with deliberate_500(sqlite_site.app, name):
            fails_with_a_500(
                name,
                lambda name=name: fuzz_endpoint(endpoints[name], fuzzer.known, fuzzer.anonymous),
            )


def test_a_500_in_any_page_handler_fails_the_pages_fuzzer(sqlite_site: Site) -> None:
    fuzzer = prepare_pages_fuzzer(sqlite_site, recorder_for(sqlite_site))
    for name in fuzzer.names:
        with deliberate_500(sqlite_site.app, name):
            fails_with_a_500(name, lambda name=name: fuzzer.run(only=name.__eq__))
