from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet message commands (see 'cafleet message --help')."
    noun = "message"
