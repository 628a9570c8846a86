"""Runtimes: the replay loop and the shared dispatcher."""
