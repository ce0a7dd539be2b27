"""Pure domain of the review service: the chain decider and the review form (no I/O)."""
