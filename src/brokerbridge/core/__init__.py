"""Venue-independent building blocks: normalized events, errors, clock, backoff, book, config."""
