"""State built from normalized events: balances that never read 0 because a stream is down,
and an executions journal that never reports the same fill twice. No I/O here."""
