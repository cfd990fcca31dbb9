"""What each venue serves a request that leaves a choice open: the book depth when none is named.

One table for every way in — a `/ws` subscribe, `/api/book`, `brokerbridge watch` — so the same
request gets the same book whichever way it comes.
"""

from __future__ import annotations

from types import MappingProxyType

from brokerbridge.venues import kraken, primary

# Kraken: its shallowest depth (10, 25, 100, 500, 1000), which is also what its checksum covers.
# Primary: its deepest (1–5).
DEFAULT_BOOK_DEPTHS = MappingProxyType({kraken.VENUE: 10, primary.VENUE: 5})
FALLBACK_BOOK_DEPTH = 10  # a venue not in the table: the Bridge's own default (`Subscription.depth`)


def book_depth(venue: str, depth: int | None = None) -> int:
    """`depth` when the request names one, else `venue`'s default."""
    if depth is not None:
        return depth
    return DEFAULT_BOOK_DEPTHS.get(venue, FALLBACK_BOOK_DEPTH)
