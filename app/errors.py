"""The one exception type a user can act on.

Raise DeepVisError with a single line that names the file, the layer or node, and what is wrong.
Command-line tools and the app print ``str(error)`` alone (no traceback) and go on or exit.
"""


class DeepVisError(Exception):
    """A problem with the user's files, settings or input, explained in one line."""


def exit_with_message(error: DeepVisError) -> "NoReturn":  # noqa: F821
    import sys

    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2)
