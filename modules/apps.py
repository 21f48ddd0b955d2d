from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


class ModulesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "modules"
    verbose_name = _("Modules")

    def ready(self):
        from modules.graph import ModuleGraphError
        from modules.registry import module_definitions, registry_load

        try:
            registry_load()
        except ModuleGraphError as error:
            # A clear startup error: the process refuses to run with a broken module graph.
            raise ImproperlyConfigured(f"Modules: {error}") from error
        for definition in module_definitions().values():
            if definition.on_startup is not None:
                definition.on_startup()
