"""The one error type a user sees: it becomes a single line on stderr and exit status 2."""


class UserError(Exception):
    """Bad input (paths, data, options): the message names the problem and the fix."""


EXIT_USAGE = 2
