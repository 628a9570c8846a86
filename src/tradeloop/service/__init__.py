"""The paper/live trading service: the daemon that composes a runtime, and what it keeps
around the loop (the journal, reconciliation with the venue, the health server, the operator's
control file, the state it writes out)."""
