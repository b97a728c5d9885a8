"""The built-in commands, shipped as ordinary default plugins (one module per group)."""
