"""Options analytics (issue 20): implied volatility, greeks, implied rates, BYMA's calendar.

Pure and sans-I/O like the venue cores: arrays and `now` in, numbers out. The math modules
(`black_scholes`, `american`, `implied_vol`) work on numpy arrays — a whole chain per call, so an
underlying's tick costs a few array passes, not a Python loop per option. `analytics` turns one
chain's contracts and quotes into `OptionAnalytics` events, with a reason for every empty figure;
`views` holds the chain as the API returns it (msgspec only: `BridgeClient` imports it without
numpy). Nothing here is imported by this package's `__init__`, so `views` stays light.
"""
