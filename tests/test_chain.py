import pytest
import toyplugins as toy

from occcore.chain import ChainExhausted, run_chain
from occcore.plugin import NotApplicable


@pytest.fixture
def aligners(make_registry):
    registry = make_registry(("al", toy.Aligners()))
    return registry.get("aligner", "dummy"), registry.get("aligner", "needs-missing")


def test_first_success_wins_and_attempts_are_recorded(aligners):
    dummy, missing = aligners
    calls = []

    def call(registered, options):
        calls.append(options)
        if len(calls) == 1:
            raise RuntimeError("first try fails")
        return "result"

    result = run_chain("align", [(missing, None), (dummy, "a"), (dummy, "b")], call)
    assert result.value == "result" and result.options == "b"
    statuses = [a.status for a in result.attempts]
    assert statuses == ["unavailable", "failed", "ok"]
    assert "no_such_module_xyz" in result.attempts[0].reason
    assert result.attempts[1].reason == "RuntimeError: first try fails"
    assert all(a.seconds >= 0 for a in result.attempts)
    prov = result.provenance("align")
    assert prov.implementation == "dummy" and len(prov.attempts) == 3


def test_declined_rejected_and_exhausted_table(aligners):
    dummy, missing = aligners
    outcomes = iter([NotApplicable("too few stars"), "bad", ValueError("boom")])

    def call(registered, options):
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    with pytest.raises(ChainExhausted) as err:
        run_chain("align", [(dummy, None)] * 3 + [(missing, None)], call,
                  gate=lambda v: "residual too large" if v == "bad" else None, source="obs.ser")
    exc = err.value
    assert [a.status for a in exc.attempts] == ["declined", "rejected", "failed", "unavailable"]
    table = str(exc)
    assert "step 'align' failed for 'obs.ser'" in table
    for text in ("too few stars", "residual too large", "ValueError: boom", "no_such_module_xyz"):
        assert text in table
    assert isinstance(exc.__cause__, ExceptionGroup)
    assert exc.exit_code == 1


def test_strict_stops_at_first_failure_but_not_at_a_decline(aligners):
    dummy, _ = aligners
    seen = []

    def call(registered, options):
        seen.append(options)
        if options == 1:
            raise NotApplicable("no")
        raise RuntimeError("hard failure")

    with pytest.raises(ChainExhausted, match="--strict") as err:
        run_chain("align", [(dummy, 1), (dummy, 2), (dummy, 3)], call, strict=True)
    assert seen == [1, 2]
    assert [a.status for a in err.value.attempts] == ["declined", "failed"]


def test_keyboard_interrupt_is_never_swallowed(aligners):
    dummy, _ = aligners

    def call(registered, options):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_chain("align", [(dummy, None), (dummy, None)], call)


def test_empty_chain_is_an_error():
    with pytest.raises(ChainExhausted, match="chain is empty"):
        run_chain("timing", [], lambda r, o: None)


def test_events_are_emitted(aligners):
    dummy, _ = aligners
    events = []
    run_chain("align", [(dummy, None)], lambda r, o: 1, emit=events.append)
    assert [e.kind for e in events] == ["step-started", "attempt-finished", "step-finished"]
