"""The one exception type the command line turns into a clear one-line message and exit code 2."""


class UserError(ValueError):
    """Bad input from the user (a file, a field, an option): the message names it and the allowed range."""
