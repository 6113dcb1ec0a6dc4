"""The cafleet broker: the one Django app (app label ``cafleet``)."""
