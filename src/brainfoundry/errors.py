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


class DataErrors(InputError):
    """Every problem found in one data file (a manifest, a participants table), one line each,
    so a user fixes them all at once instead of one per run."""

    def __init__(self, path: object, problems: list[str]):
        self.problems = [" ".join(str(p).split()) for p in problems]
        n = len(self.problems)
        super().__init__(path, f"{n} problem{'s' * (n != 1)}: " + "; ".join(self.problems))
        head = f"{n} problems, one per line" if n != 1 else "1 problem"
        self.args = (f"{self.path}: {head}:\n" + "\n".join(f"  {p}" for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])
