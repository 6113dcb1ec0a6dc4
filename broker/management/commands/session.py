from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet session commands (see 'cafleet session --help')."
    noun = "session"
