"""``manage.py cafleet ARGS...``: the ``cafleet`` command line inside Django's runner.

Every word after ``cafleet`` goes, untouched, to the same entry point as the console script
(``cafleet_project.cli.main``): one parser, one check order, the same output and exit codes.
``call_command("cafleet", "message", "poll", ...)`` works too; a failing command raises
``CommandError`` carrying the exit code after its error was written to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run a cafleet command, e.g. 'manage.py cafleet message poll --agent-id ID'."
    requires_system_checks: list = []
    requires_migrations_checks = False

    def create_parser(self, prog_name, subcommand, **kwargs):
        """Django's parser, whose ``parse_args`` takes every word as a positional argument:
        the cafleet grammar parses them (``call_command`` goes through here)."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}

        def parse_args(args=None, namespace=None):
            return argparse.Namespace(**defaults, args=[str(a) for a in args or ()])

        parser.parse_args = parse_args
        return parser

    def run_from_argv(self, argv):
        """``manage.py cafleet ...``: exit with the entry point's own code and output."""
        from cafleet_project.cli import main

        sys.exit(main(argv[2:]))

    def handle(self, *args, **options):
        from cafleet_project.cli import main

        with contextlib.ExitStack() as stack:
            if options.get("stdout"):
                stack.enter_context(contextlib.redirect_stdout(options["stdout"]))
            if options.get("stderr"):
                stack.enter_context(contextlib.redirect_stderr(options["stderr"]))
            code = main([str(a) for a in args])
        if code:
            raise CommandError(f"cafleet exited with status {code}", returncode=code)
