"""The rootdir pytest chose before pytest-modgap loaded: refused when a ``--modgap-*`` value written
after a space moved it (pytest took the value for a test path)."""

from __future__ import annotations

from pathlib import Path

import pytest


def check_rootdir(config: pytest.Config, valued_flags: frozenset[str]) -> None:
    """A UsageError when a ``--modgap-*`` value written after a space (``--modgap-model PATH``) is
    an existing path that moved pytest's rootdir: pytest picks the rootdir before plugins load, so
    it took PATH for a test path, and the default baselines/ folder moved with it.
    ``valued_flags``: the plugin's options that take a value."""
    if config.option.rootdir:
        return  # pinned by the user
    arguments = [str(argument) for argument in config.invocation_params.args]
    spaced = [
        (flag, arguments[index + 1])
        for index, flag in enumerate(arguments[:-1])
        if flag in valued_flags and (config.invocation_params.dir / arguments[index + 1]).exists()
    ]
    if not spaced:
        return
    try:
        from _pytest.config.findpaths import determine_setup

        positional = config.args if config.args_source == pytest.Config.ArgsSource.ARGS else []
        expected, *_ = determine_setup(
            inifile=config.option.inifilename,
            override_ini=config.option.override_ini,
            args=[arg for arg in positional if arg not in {value for _, value in spaced}],
            rootdir_cmd_arg=None,
            invocation_dir=config.invocation_params.dir,
        )
    except Exception:  # pytest's private layout changed: leave the check out, never fail on it
        return
    if Path(expected) == config.rootpath:
        return
    flag, value = spaced[0]
    raise pytest.UsageError(
        f"{flag} {value} (with a space): pytest took {value} for a test path when it chose its "
        f"rootdir, before pytest-modgap loaded, so the rootdir is {config.rootpath} instead of "
        f"{expected}, and baselines would be read from and written to the wrong folder. Write "
        f"{flag}={value} (with '='), or pin the rootdir with --rootdir."
    )
