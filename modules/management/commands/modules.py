"""`manage.py modules list|enable CODE|disable CODE|config CODE key=value...` (docs/modules.md)."""

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _

from core.audit import Actor
from core.commands import LocalizedCommand
from core.exceptions import BillingError
from modules.health import modules_health
from modules.selectors import module_rows, modules_state_forget
from modules.services import module_configure, module_disable, module_enable

COMMAND_ACTOR = Actor.system("modules-command")


class Command(LocalizedCommand):
    help = "List modules, switch them on and off, and change their configuration."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="code, version, enabled, requires and health of every module")
        for action in ("enable", "disable"):
            sub.add_parser(action, help=f"{action} a module (and what it cascades to)").add_argument("code")
        config = sub.add_parser("config", help="set configuration keys: modules config CODE key=value ...")
        config.add_argument("code")
        config.add_argument("pairs", nargs="*", metavar="key=value")

    def handle(self, *args, action: str, **options):
        try:
            if action == "list":
                self._list()
            elif action == "config":
                self._config(options["code"], options["pairs"])
            else:
                switch = module_enable if action == "enable" else module_disable
                switched = switch(code=options["code"], actor=COMMAND_ACTOR)
                self.stdout.write(self._switched_line(action, options["code"], switched))
        except BillingError as error:
            raise CommandError(error.message) from error

    @staticmethod
    def _switched_line(action: str, code: str, switched: list[str]) -> str:
        if switched:
            done = _("enabled: %(modules)s") if action == "enable" else _("disabled: %(modules)s")
            return done % {"modules": ", ".join(switched)}
        unchanged = (_("%(module)s was already enabled; nothing changed.") if action == "enable"
                     else _("%(module)s was already disabled; nothing changed."))
        return unchanged % {"module": code}

    def _config(self, code: str, pairs: list[str]) -> None:
        if not pairs:
            raise CommandError(_("Name at least one key=value."))
        changes = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(_("%(pair)s is not key=value.") % {"pair": repr(pair)})
            changes[key] = value
        config = module_configure(code=code, changes=changes, actor=COMMAND_ACTOR)
        self.stdout.write(f"{code}: " + ", ".join(f"{k}={v}" for k, v in sorted(config.items())))

    def _list(self) -> None:
        modules_state_forget()
        rows = module_rows()
        health = modules_health(deep=False, budget=settings.MODULES_HEALTH_TIMEOUT).modules
        # Codes, versions and health statuses are machine words; the headings and yes/no are read.
        header = (_("code"), _("version"), _("enabled"), _("requires"), _("health"))
        lines = [(_("%(module)s (core)") % {"module": row.definition.code} if row.definition.is_core
                  else row.definition.code, row.definition.version,
                  _("yes") if row.enabled else _("no"), ",".join(row.definition.requires) or "-",
                  health.get(row.definition.code, {}).get("status", "-")) for row in rows]
        widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            cells = (str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())
