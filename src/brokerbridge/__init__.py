"""brokerbridge: self-healing venue sessions re-served as one normalized stream.

Layers (imports only point left):  core ◀ venues ◀ io ◀ services ◀ bridge/cli; sim is separate.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
