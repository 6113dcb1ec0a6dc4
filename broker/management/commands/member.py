from broker.management.base import CafleetCommand


class Command(CafleetCommand):
    help = "cafleet member commands (see 'cafleet member --help')."
    noun = "member"
