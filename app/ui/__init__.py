"""The desktop app: the window, its panes and keys, and the threads that feed it."""
