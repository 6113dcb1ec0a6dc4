"""The Django side of the cafleet commands: ``manage.py <noun> <verb> ...``.

Arguments come from the same grammar table the ``cafleet`` entry point uses; ``handle``
hands the parsed options to the module's handler. Broker commands skip Django's system
checks (they would import the URLconf and the admin on every call).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from broker.grammar import GROUP_MAP, TOP_MAP, Opt, Parsed


def _add_option(parser, opt: Opt) -> None:
    kwargs: dict = {"dest": opt.dest, "help": opt.help}
    if opt.kind == "flag":
        kwargs["action"] = "store_true"
        if opt.off_names:
            parser.add_argument(*opt.off_names, dest=opt.dest, action="store_false")
    else:
        kwargs["required"] = opt.required
        kwargs["default"] = opt.default
        if opt.kind == "int":
            kwargs["type"] = int
        elif opt.kind == "float":
            kwargs["type"] = float
        elif opt.kind == "choice":
            kwargs["choices"] = opt.choices
    parser.add_argument(*opt.names, **kwargs)


def _add_command_arguments(parser, command) -> None:
    for opt in command.options:
        _add_option(parser, opt)
    for arg in command.args:
        parser.add_argument(arg.dest, nargs="*" if arg.many else None, metavar=arg.name)


class CafleetCommand(BaseCommand):
    noun = ""
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--session-id", dest="session_id")
        parser.add_argument("--json", dest="json_mode", action="store_true")
        parser.add_argument("--pretty", action="store_true")
        if self.noun in TOP_MAP:
            _add_command_arguments(parser, TOP_MAP[self.noun])
            return
        subparsers = parser.add_subparsers(dest="verb", required=True)
        for command in GROUP_MAP[self.noun].commands:
            sub = subparsers.add_parser(command.name, help=command.help)
            _add_command_arguments(sub, command)

    def handle(self, *args, **options):
        from broker.commands import dispatch
        from broker.exceptions import CafleetError
        from broker.output import Output

        verb = options.pop("verb", None)
        path = (self.noun, verb) if verb else (self.noun,)
        parsed = Parsed(
            path=path,
            json=options.pop("json_mode", False) or bool(options.get("json")),
            pretty=options.pop("pretty", False),
            session_id=options.pop("session_id", None),
            options=options,
        )
        if "prompt" in options and options["prompt"] is not None:
            options["prompt"] = tuple(options["prompt"])
        out = Output(
            json_mode=parsed.json, pretty=parsed.pretty, stdout=self.stdout, stderr=sys.stderr
        )
        try:
            dispatch(parsed, out)
        except CafleetError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from exc
