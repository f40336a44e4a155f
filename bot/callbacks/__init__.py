"""Typed callback data, one module per feature; prefixes carry a version (`lang1`, `r1`...)."""
