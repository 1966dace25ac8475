"""pytest entry point of pytest-modgap (registered as ``modgap`` in the pytest11 group).

Only hooks and fixtures live here; everything they do is delegated to the library.
"""
