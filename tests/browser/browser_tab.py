"""A browser tab that remembers its console errors, and where its screenshots go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright import sync_api as playwright_sync

SCREENSHOTS = Path(__file__).parents[2] / "artifacts" / "screenshots"


@dataclass
class Tab:
    """A page plus every console error and uncaught exception it produced."""

    page: playwright_sync.Page
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path
