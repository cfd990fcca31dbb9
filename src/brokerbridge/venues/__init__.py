"""Pure (sans-I/O) protocol code, one package per venue: text and `now` in, typed events and frames out."""
