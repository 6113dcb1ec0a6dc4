from django.apps import AppConfig


class BrokerConfig(AppConfig):
    name = "broker"
    label = "cafleet"
    verbose_name = "cafleet broker"
    default_auto_field = "django.db.models.AutoField"
