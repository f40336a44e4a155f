"""Persistence helpers that are not domain rules: dialect-specific SQL and the FSM storage."""
