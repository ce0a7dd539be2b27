"""Adapters: the event log as the review repository, and the work-queue read model."""
