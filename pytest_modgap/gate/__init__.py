"""The gate: YAML baselines and their verdicts, and the pytest side (plugin, fixture, session, summary).

The only layer that imports pytest; the baseline engine itself works without it.
"""
