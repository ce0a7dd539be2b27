"""Adapters of the intake service: HTTP routes, bus handlers, read models, the catalog."""
