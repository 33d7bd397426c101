"""A sender process imports ``digest.deliver`` only: it must not pay for rendering,
scheduling or the web app (mjml, premailer, APScheduler, Starlette: ~0.95 s together)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mjml", "premailer", "apscheduler", "starlette", "digest.config", "digest.render")


def test_importing_deliver_loads_no_renderer_scheduler_or_web_app() -> None:
    probe = (
        "import json, sys; import digest.deliver; "
        "print(json.dumps(sorted(name for name in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "digest.deliver" in loaded
    heavy = [name for name in loaded if name.split(".")[0] in HEAVY or name in HEAVY]
    assert heavy == []
