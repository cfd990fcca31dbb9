"""The Primary-compatible endpoint `/primary/`: Primary's REST paths and WebSocket protocol served by
the bridge from its one upstream Primary session, so an existing Primary client (pyRofex, a browser
front end using `fetch`) works by changing its base URL. Tokens there are the bridge's own access
tokens (server/access_tokens.py), never the broker's.
"""
