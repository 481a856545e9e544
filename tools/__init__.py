"""Offline jobs and command-line tools: one thin CLI per job over the app library."""
