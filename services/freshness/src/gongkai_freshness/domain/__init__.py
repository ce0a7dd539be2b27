"""freshness's domain: column state from events, deadlines, transitions. No I/O."""
