"""Who speaks in a file: a configurable regular expression on its path (``data.speaker_pattern``
of ``data=pairs`` and ``data=folders``), so that splits can hold whole speakers out."""

from __future__ import annotations

import re

from crn_lightning.errors import ConfigError


def compile_speaker_pattern(pattern: str, key: str) -> re.Pattern[str]:
    """``pattern`` compiled, or a ``ConfigError`` naming ``key`` and the regex's complaint."""
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"{key}={pattern!r} is not a regular expression: {err}") from err


def speaker_of(name: str, pattern: re.Pattern[str], key: str) -> str:
    """The speaker ``pattern`` finds in ``name`` (its first group, or the whole match)."""
    found = pattern.search(name)
    if found is None:
        raise ConfigError(
            f"{key}={pattern.pattern!r} finds no speaker in {name!r}: it must match every "
            "file (its first group, or the whole match, is the speaker)"
        )
    return found.group(1) if pattern.groups else found.group(0)
