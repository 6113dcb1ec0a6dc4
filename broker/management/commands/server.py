from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet server commands (see 'cafleet server --help')."
    noun = "server"
