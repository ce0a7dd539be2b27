"""freshness's adapters: the register that holds the current state, the log, the settings."""
