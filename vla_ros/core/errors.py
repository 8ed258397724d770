"""Errors a node refuses to start with, importable without the model libraries (the simulator's
bridge node shares main() with the model nodes and needs no torch).
"""


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says which one and what to do."""
