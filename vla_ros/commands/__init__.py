"""The `vla-ros` commands, one module per command, named after it."""
