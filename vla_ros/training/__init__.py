"""Training and measuring the embedded default models (not imported by the nodes)."""
