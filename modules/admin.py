"""The modules page of the admin: every module with its state, health and configuration; switching one
asks for a confirmation naming every module the change cascades to."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from core.audit import Actor
from core.exceptions import BillingError
from modules.definitions import ModuleDefinition
from modules.health import modules_health
from modules.models import ModuleState
from modules.registry import module_definitions
from modules.selectors import module_cascade, module_config, module_rows, modules_state_forget
from modules.services import module_configure, module_disable, module_enable

SWITCH_PERMISSION = "modules.switch_modulestate"


def config_form_class(definition: ModuleDefinition) -> type[forms.Form]:
    """A form with one field per configuration key; values are checked by the service, not the form."""
    fields = {}
    for item in definition.config:
        if item.kind == "bool":
            fields[item.name] = forms.BooleanField(required=False, help_text=item.help)
        elif item.kind == "int":
            fields[item.name] = forms.CharField(help_text=item.help, max_length=20)
        else:
            fields[item.name] = forms.CharField(help_text=item.help, max_length=200)
    return type(f"{definition.code.title()}ConfigForm", (forms.Form,), fields)


@admin.register(ModuleState)
class ModuleStateAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<slug:code>/switch/<slug:action>/", view(self.switch_view), name="modules_modulestate_switch"),
            path("<slug:code>/configure/", view(self.configure_view), name="modules_modulestate_configure"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        modules_state_forget()
        health = modules_health(deep=False, budget=settings.MODULES_HEALTH_TIMEOUT).modules
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Modules"),
                   "rows": [(row, health.get(row.definition.code)) for row in module_rows()],
                   "can_switch": request.user.has_perm(SWITCH_PERMISSION)}
        return TemplateResponse(request, "admin/modules/modulestate/modules.html", context)

    def _definition(self, request, code: str) -> ModuleDefinition:
        if not request.user.has_perm(SWITCH_PERMISSION):
            raise PermissionDenied
        definition = module_definitions().get(code)
        if definition is None:
            raise Http404(_("No module %(module)r.") % {"module": code})
        return definition

    def switch_view(self, request, code: str, action: str):
        definition = self._definition(request, code)
        if action not in ("enable", "disable"):
            raise Http404(_("Modules are enabled or disabled."))
        changelist = reverse("admin:modules_modulestate_changelist")
        if request.method == "POST":
            switch = module_enable if action == "enable" else module_disable
            try:
                switched = switch(code=code, actor=Actor.of_user(request.user), reason="admin")
            except BillingError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                done = ", ".join(switched) or _("nothing (already so)")
                done_message = _("Enabled: %(modules)s.") if action == "enable" else _("Disabled: %(modules)s.")
                self.message_user(request, done_message % {"modules": done}, messages.SUCCESS)
            return HttpResponseRedirect(changelist)
        cascade = [module_definitions()[c] for c in module_cascade(code=code, enable=action == "enable")]
        title = _("Enable %(module)s?") if action == "enable" else _("Disable %(module)s?")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "definition": definition,
                   "action": action, "cascade": cascade, "title": title % {"module": definition.name},
                   "changelist": changelist}
        return TemplateResponse(request, "admin/modules/modulestate/switch_confirm.html", context)

    def configure_view(self, request, code: str):
        definition = self._definition(request, code)
        form_class = config_form_class(definition)
        form = form_class(request.POST or None, initial=module_config(code=code))
        if request.method == "POST" and form.is_valid():
            try:
                module_configure(code=code, changes=form.cleaned_data, actor=Actor.of_user(request.user),
                                 reason="admin")
            except BillingError as error:
                for field, reasons in error.extra.get("fields", {}).items():
                    form.add_error(field if field in form.fields else None, reasons)
            else:
                self.message_user(request, _("%(module)s: configuration saved.") % {"module": definition.name},
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:modules_modulestate_changelist"))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "definition": definition,
                   "form": form, "title": _("Configure %(module)s") % {"module": definition.name}}
        return TemplateResponse(request, "admin/modules/modulestate/configure.html", context)
