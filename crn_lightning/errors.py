"""Errors a user can act on: the entry points print their message, not a traceback."""

from __future__ import annotations

from hydra.errors import CompactHydraException


class UserError(CompactHydraException):
    """Bad input (a config value, a file, a corpus, a run folder); the message names it.

    Hydra prints a ``CompactHydraException`` raised by a task as its message alone, so the
    user sees what to fix rather than a traceback from deep inside.
    """


class ConfigError(UserError, ValueError):
    """A config value that cannot work; the message names the key and what was expected."""
