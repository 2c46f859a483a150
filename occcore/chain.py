"""Fallback chains: try implementations in the configured order and record every attempt.

Each candidate ends as one of

* ``unavailable`` — a module it requires cannot be imported,
* ``declined``    — it raised :class:`~occcore.plugin.NotApplicable`,
* ``failed``      — it raised any other exception,
* ``rejected``    — it returned a result that the step's acceptance gate refused,
* ``ok``          — it returned an accepted result; the chain stops there.

When nobody succeeds, :class:`ChainExhausted` carries every attempt and prints them as
a table. ``strict`` re-raises the first failure at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from occcore.errors import InputError, StepFailed
from occcore.model import Attempt, StepProvenance
from occcore.plugin import Event, NotApplicable
from occcore.registry import Registered

T = TypeVar("T")

Gate = Callable[[Any], "str | None"]
"""An acceptance gate returns None to accept a result, or the reason to reject it."""


class ChainExhausted(StepFailed):
    """No implementation of a step produced an accepted result."""

    def __init__(self, step: str, source: str, attempts: Sequence[Attempt], hint: str = ""):
        self.step = step
        self.source = source
        self.attempts = tuple(attempts)
        self.hint = hint
        super().__init__(self._table())

    def _table(self) -> str:
        what = f" for {self.source!r}" if self.source else ""
        lines = [f"step {self.step!r} failed{what}: no implementation succeeded"]
        if not self.attempts:
            lines.append("  (the chain is empty)")
        width_name = max([len(a.implementation) for a in self.attempts] + [4])
        width_provider = max([len(a.provider) for a in self.attempts] + [8])
        for i, a in enumerate(self.attempts, 1):
            lines.append(f"  {i}. {a.implementation:<{width_name}}  {a.provider:<{width_provider}}  "
                         f"{a.status:<11}  {a.reason}")
        lines.append(self.hint or "re-run with -v for tracebacks, or --strict to stop at the "
                     "first failure")
        return "\n".join(lines)


@attrs.frozen
class ChainResult(Generic[T]):
    """The accepted value, who produced it, and every attempt before and including it."""

    value: Any
    used: Registered
    options: Any
    attempts: tuple[Attempt, ...]

    def provenance(self, step: str) -> StepProvenance:
        options = attrs.asdict(self.options) if attrs.has(type(self.options)) else {}
        return StepProvenance(step=step, implementation=self.used.name,
                              provider=str(self.used.provider), options=options,
                              attempts=self.attempts)


def run_chain(step: str, candidates: Sequence[tuple[Registered, Any]],
              call: Callable[[Registered, Any], Any], *, gate: Gate | None = None,
              strict: bool = False, source: str = "",
              emit: Callable[[Event], None] | None = None,
              input_error_ends: bool = False) -> ChainResult:
    """Run ``call(candidate, options)`` for each ``(candidate, options)`` until one is accepted.

    ``gate(result)`` returns None to accept or a reason to reject. Exceptions that are not
    ``Exception`` (Ctrl-C) are never caught.
    """
    attempts: list[Attempt] = []
    errors: list[Exception] = []
    notify = emit or (lambda event: None)
    notify(Event(kind="step-started", step=step, message=source))
    for candidate, options in candidates:
        provider = str(candidate.provider)
        missing = candidate.missing_modules()
        if missing:
            attempts.append(Attempt(implementation=candidate.name, provider=provider,
                                    status="unavailable",
                                    reason="module(s) not importable: " + ", ".join(missing)))
            notify(_attempt_event(step, attempts[-1]))
            if strict:
                break
            continue
        started = time.perf_counter()
        try:
            value = call(candidate, options)
        except InputError as exc:
            if getattr(exc, "stops_chain", False) or input_error_ends:
                # a safety refusal always ends the step; and when identification ranked the
                # candidates, the one that claimed the input best has said what is wrong
                # with it: nobody after it would make the input good
                raise
            errors.append(exc)
            attempt = Attempt(implementation=candidate.name, provider=provider, status="failed",
                              reason=f"{type(exc).__name__}: {exc}",
                              seconds=time.perf_counter() - started)
        except NotApplicable as exc:
            attempt = Attempt(implementation=candidate.name, provider=provider, status="declined",
                              reason=str(exc) or "not applicable",
                              seconds=time.perf_counter() - started)
        except Exception as exc:
            errors.append(exc)
            attempt = Attempt(implementation=candidate.name, provider=provider, status="failed",
                              reason=f"{type(exc).__name__}: {exc}",
                              seconds=time.perf_counter() - started)
        else:
            seconds = time.perf_counter() - started
            reason = gate(value) if gate is not None else None
            if reason is None:
                attempts.append(Attempt(implementation=candidate.name, provider=provider,
                                        status="ok", seconds=seconds))
                notify(_attempt_event(step, attempts[-1]))
                notify(Event(kind="step-finished", step=step, message=candidate.name))
                return ChainResult(value=value, used=candidate, options=options,
                                   attempts=tuple(attempts))
            attempt = Attempt(implementation=candidate.name, provider=provider, status="rejected",
                              reason=reason, seconds=seconds)
        attempts.append(attempt)
        notify(_attempt_event(step, attempt))
        if strict and attempt.status != "declined":
            break
    if len(attempts) == 1 and len(errors) == 1 and isinstance(errors[0], InputError):
        raise errors[0]     # one candidate refused bad input: say that, not a one-row table
    hint = "stopped at the first failure (--strict)" if strict else ""
    exhausted = ChainExhausted(step, source, attempts, hint=hint)
    if errors:
        raise exhausted from ExceptionGroup(f"errors in step {step!r}", errors)
    raise exhausted


def _attempt_event(step: str, attempt: Attempt) -> Event:
    return Event(kind="attempt-finished", step=step,
                 message=f"{attempt.implementation}: {attempt.status} {attempt.reason}".strip(),
                 data=attempt.to_dict())
