"""axe-core on every page, signed out, as a member, a developer and staff (issue #12).

No violation of impact serious or critical; the failure names each rule and its nodes.
"""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.pages import PAGES, Visit, World

pytestmark = pytest.mark.browser

BLOCKING = {"serious", "critical"}
_axe = Axe()


def _describe(violation: dict[str, Any]) -> str:
    nodes = "; ".join(
        " ".join(node.get("target", [])) + " — " + node.get("failureSummary", "").splitlines()[-1]
        for node in violation["nodes"][:5]
    )
    return f"{violation['id']} ({violation['impact']}): {violation['help']} [{nodes}]"


@pytest.mark.parametrize("visit", PAGES, ids=lambda visit: visit.id)
def test_page_has_no_serious_violation(world: World, visit: Visit) -> None:
    page = world.open(visit)
    try:
        results = _axe.run(page)
    finally:
        page.close()
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{visit.id}:\n" + "\n".join(_describe(v) for v in blocking)
