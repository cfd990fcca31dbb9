"""Primary I/O: token login lifecycle, REST client with re-login on 401, instruments cache, and the
connector that runs the one Primary WebSocket under the shared supervisor."""
