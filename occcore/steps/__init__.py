"""The steps of a run (reduce, fit, limb, report, demo)."""
