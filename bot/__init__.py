"""Invataxi booking bot: the application core (settings, app factory, middlewares, services)."""
