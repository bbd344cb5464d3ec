"""User-facing errors: one clear line naming the file and the problem, never a stack trace."""

from __future__ import annotations


class BrainFoundryError(Exception):
    """A mistake in the user's input or configuration; the CLI prints it as one line."""


class InputError(BrainFoundryError):
    """A scan or data file that cannot be used; carries the offending path."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")


class ConfigError(BrainFoundryError):
    """A configuration value or override that is not valid."""
