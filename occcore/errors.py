"""Error hierarchy of occcore.

Every error a user can meet derives from :class:`OccCoreError` and carries an
``exit_code`` that the CLI uses: 1 when a processing step failed, 2 for usage,
configuration and bad-input errors.
"""
from __future__ import annotations

import difflib


class OccCoreError(Exception):
    """Base of every error occcore raises on purpose."""

    exit_code = 1


class UsageError(OccCoreError):
    """The command line or API call is wrong."""

    exit_code = 2


class ConfigError(OccCoreError):
    """The configuration is invalid (unknown key, wrong type, bad value)."""

    exit_code = 2


class InputError(OccCoreError):
    """An input file or parameter cannot be used as given."""

    exit_code = 2


class CorruptSource(InputError):
    """A source is truncated or damaged. The message names the file and where it went wrong."""


class LimitExceeded(InputError):
    """A safety limit refused the input (an archive bomb, absurd sizes, too deep nesting).

    It ends the read: no other implementation of the step is offered the same input.
    """

    stops_chain = True


class Refused(InputError):
    """An option or input was understood and refused on purpose: what the user asked for
    cannot be done as asked (a correction with no known value, say), and no other
    implementation of the step may quietly do it without. It ends the step's chain."""

    stops_chain = True


class UnknownFormat(InputError):
    """No reader recognised the source."""


class AmbiguousFormat(InputError):
    """Several readers recognised the source equally well."""


class UnknownImplementation(ConfigError):
    """The configuration names an implementation nobody registered."""


class AmbiguousImplementation(ConfigError):
    """Two plugins registered the same name and the configuration uses it."""


class StepFailed(OccCoreError):
    """A processing step could not produce a result."""


def did_you_mean(word: str, choices) -> str:
    """A ' (did you mean ...?)' suffix for an unknown word, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
