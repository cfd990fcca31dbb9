"""`ClientQueue`: a `/ws` client's own outgoing messages — what is not market data shared through a
hub (server/hub.py).

- lossless (acks, errors, pongs, account data, the `status` and `orders` channels): kept in order;
  more than `limit` waiting means the client cannot keep up → `put_lossless` returns False (the
  caller closes the connection with 1008 and a reason).
- the heartbeat: a new one replaces the one waiting, if any — a client that does not read gets one
  heartbeat, not a pile.

Everything is drained at once (`drain`): the connection writes what waits in one go. Messages are
the UTF-8 JSON the client receives; some carry when their content reached the connection
(`received`, for the delivery-lag metric).
"""

from __future__ import annotations


class ClientQueue:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        # [data, received]; a list, so that the waiting heartbeat can be replaced in place
        self._entries: list[list[bytes | float | None]] = []
        self._heartbeat: list[bytes | float | None] | None = None
        self._lossless = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put_lossless(self, data: bytes, received: float | None = None) -> bool:
        if self._lossless >= self.limit:
            return False
        self._entries.append([data, received])
        self._lossless += 1
        return True

    def put_heartbeat(self, data: bytes) -> bool:
        """Queue heartbeat `data`, or put it in place of the one waiting. True if it replaced one."""
        if self._heartbeat is not None:
            self._heartbeat[0] = data
            return True
        self._heartbeat = [data, None]
        self._entries.append(self._heartbeat)
        return False

    def drain(self) -> tuple[list[bytes], list[float]]:
        """Everything waiting, oldest first, and the `received` times among them; the queue is
        then empty."""
        entries, self._entries = self._entries, []
        self._heartbeat = None
        self._lossless = 0
        texts: list[bytes] = []
        received: list[float] = []
        for data, when in entries:
            texts.append(data)  # type: ignore[arg-type]
            if when is not None:
                received.append(when)  # type: ignore[arg-type]
        return texts, received

    def clear(self) -> None:
        self.drain()
