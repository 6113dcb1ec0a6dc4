from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet agent commands (see 'cafleet agent --help')."
    noun = "agent"
