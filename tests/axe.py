"""axe-core (npm ``axe-core``) for the browser tests: found in ``$DIGEST_AXE_DIR`` (default
``~/.cache/digest-axe``), installed there with npm on first use, injected into a page, run.

    violations = serious_violations(page)   # [] or "rule: help (selector, ...)" lines
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

AXE_VERSION = "4.10.3"
AXE_DIR = Path(os.environ.get("DIGEST_AXE_DIR", Path.home() / ".cache" / "digest-axe"))
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"


def axe_script() -> Path:
    """axe.min.js, installed with npm into the cache folder if it is not there yet."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("axe-core needs npm (or DIGEST_AXE_DIR with node_modules/axe-core)")
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
             f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return AXE_JS


def serious_violations(page: Any) -> list[str]:
    """Run axe-core on the page (its context must bypass the CSP); the serious and critical
    violations, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    result = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v =>"
        " ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'])}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
