"""The layering contract (pyproject.toml [tool.importlinter]) holds, and can fail.

`make lint` runs `lint-imports` on the real tree; here it also runs on a copy
with a deliberate violation, so a contract that checks nothing would be caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def lint_imports(source_root: Path, config_dir: Path) -> subprocess.CompletedProcess[str]:
    """Check the `pitpass` under source_root: PYTHONPATH comes before the editable install."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=config_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_tree_keeps_the_layers() -> None:
    result = lint_imports(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "violation", "expected"),
    [
        # A lower layer importing a higher one.
        (
            "services/audit.py",
            "from pitpass.web import guards",
            "pitpass.services.audit -> pitpass.web.guards",
        ),
        # Two HTTP layers are siblings that may not import each other.
        (
            "api/schemas.py",
            "from pitpass.oauth import responses",
            "pitpass.api.schemas -> pitpass.oauth.responses",
        ),
    ],
)
def test_a_violation_breaks_the_contract(
    tmp_path: Path, module: str, violation: str, expected: str
) -> None:
    shutil.copytree(
        ROOT / "src" / "pitpass",
        tmp_path / "pitpass",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "pitpass" / module).open("a") as source:
        source.write(f"\n{violation}\n")
    result = lint_imports(tmp_path, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Pitpass layers BROKEN" in result.stdout
    assert expected in result.stdout
