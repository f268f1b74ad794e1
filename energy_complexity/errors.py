"""Errors a command-line user can fix: printed as one line, exit status 2."""


class CLIError(Exception):
    """A bad argument or input file; the message says what is wrong."""
