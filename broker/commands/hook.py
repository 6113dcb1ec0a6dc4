"""``cafleet hook EVENT`` and ``cafleet hooks install|uninstall`` (docs/hooks.md).

``cafleet hook`` normally never gets here: the entry point hands it to ``broker.hook``
before the grammar and Django (it runs on every tool call). This handler serves the same
call made through ``manage.py cafleet hook ...``.
"""

import os
import sys

from broker.exceptions import CafleetError


def hook(call, out) -> None:
    from broker.hook import main

    opts = call.options
    argv = [opts["event"]]
    if opts.get("director"):
        argv.append("--director")
    if opts.get("timeout") is not None:
        argv += ["--timeout", str(opts["timeout"])]
    code = main(argv)
    if code:
        sys.exit(code)


def _settings_file(call) -> str:
    from broker.hooksettings import default_settings_file

    return os.path.abspath(
        os.path.expanduser(call.options.get("settings_file") or default_settings_file())
    )


def install(call, out) -> None:
    from broker.conf import DatabaseURLError, database_path
    from broker.hooksettings import SettingsError
    from broker.hooksettings import install as do_install

    try:
        db = database_path()
        lines = do_install(_settings_file(call), db)
    except (SettingsError, DatabaseURLError) as exc:
        raise CafleetError(str(exc)) from None
    except OSError as exc:
        raise CafleetError(f"cannot edit {_settings_file(call)}: {exc.strerror or exc}.") from None
    out.text("\n".join(lines))


def uninstall(call, out) -> None:
    from broker.hooksettings import SettingsError
    from broker.hooksettings import uninstall as do_uninstall

    try:
        lines = do_uninstall(_settings_file(call))
    except SettingsError as exc:
        raise CafleetError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise CafleetError(f"cannot edit {_settings_file(call)}: {exc}.") from None
    out.text("\n".join(lines))
