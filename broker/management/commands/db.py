from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet db commands (see 'cafleet db --help')."
    noun = "db"
