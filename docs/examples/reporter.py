from occcore.plugin import NotApplicable, ReporterSpec, hookimpl, write_text


def _write(run, destination, *, options, context):
    """One line per edge: name and UTC time; declines a run without a timing result."""
    if run.timing is None:
        raise NotApplicable("no timing result in this run")
    lines = [f"outcome {run.timing.outcome}"]
    lines += [f"{name} {edge.time.isot}" for name, edge in run.timing.edges]
    return [write_text(destination / "edges.txt", "\n".join(lines) + "\n")]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="edges", summary="edge times as text", write=_write)
