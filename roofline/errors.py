"""The one error type the CLI turns into a one-line message and exit code 2, and the size checks that
raise it."""


class UsageError(ValueError):
    """Bad user input: an unknown preset, inconsistent sizes, a corrupt or foreign results file."""


def require_positive(**sizes: int) -> None:
    """:class:`UsageError` unless every keyword's value is an integer (not a bool) above 0."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"{name}: expected a positive integer, got {value!r}")


def require_nonnegative(**sizes: int) -> None:
    """:class:`UsageError` unless every keyword's value is an integer (not a bool) of 0 or more."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{name}: expected a non-negative integer, got {value!r}")
