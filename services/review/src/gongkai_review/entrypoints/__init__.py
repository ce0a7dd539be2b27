"""Entrypoints: HTTP routes, the review form renderer and the reaction to revisions."""
