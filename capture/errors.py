"""The one exception type for problems a user can fix (bad option, unreadable source, missing model file)."""


class CaptureError(Exception):
    """A problem the user can fix; the CLI prints its message and exits 2."""
