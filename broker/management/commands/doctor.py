from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet doctor commands (see 'cafleet doctor --help')."
    noun = "doctor"
