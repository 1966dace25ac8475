"""``python -m pytest_modgap.cli``: the ``modgap`` command without its console script."""

from __future__ import annotations

from pytest_modgap.cli.app import main

raise SystemExit(main())
