"""Errors the emulator reports to people: one class per failure a user can fix.

The CLI turns any `EmulatorError` into one clear line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""


class EmulatorError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""


class DisplayError(EmulatorError):
    """No X display could be started or opened."""


class SchemaError(EmulatorError, ValueError):
    """An action, key or coordinate that the schema does not allow."""


class OutsideViewport(SchemaError):
    """An action aimed outside the viewport the agent was given; it is never executed."""
