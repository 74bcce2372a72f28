"""The one error type the CLI turns into a one-line message and exit code 2."""


class UsageError(ValueError):
    """Bad user input: an unknown preset, inconsistent sizes, a corrupt or foreign results file."""
