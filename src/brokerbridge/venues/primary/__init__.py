"""Primary API (Matba Rofex, reMarkets, broker xOMS hosts): REST + WebSocket, pure protocol code.

Modules: `environments` (names → URLs), `messages` / `rest_messages` (wire types), `errors`
(error strings → `core.errors`), `rest` (sans-I/O REST codec), `normalize` (wire → `core.events`),
`catalog` (instrument details, CFI filters, option chains), `session` (`PrimaryWsSession`).
"""

VENUE = "primary"
DEFAULT_MARKET = "ROFX"
