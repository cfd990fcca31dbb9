"""Command line: `brokerbridge sim|watch|doctor|serve`. The only place that configures logging."""
