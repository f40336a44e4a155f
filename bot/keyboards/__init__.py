"""Keyboards: pure functions of (translator, data) -> markup, one module per feature."""
