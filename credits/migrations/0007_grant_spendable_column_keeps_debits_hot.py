"""Grants get `spendable` (remaining > 0, computed by the database) and their partial indexes move onto it, so a
debit's UPDATE of `remaining` changes no indexed column and stays a HOT update (docs/decisions.md, "Grant
updates stay HOT"). The debit function (migration 0006) reads the same predicate through the new column, so
that its plans keep using the partial indexes; its text is 0006's with that predicate replaced."""

from importlib import import_module

import django.db.models.lookups
from django.db import migrations, models

_OLD_PREDICATE, _NEW_PREDICATE = "g.remaining > 0", "g.spendable"


def _function_0006() -> str:
    return import_module("credits.migrations.0006_ledger_days_rollup").DEBIT_FUNCTION


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        text = _function_0006()
        # Both of the function's grant predicates (the expiry check and the spendable grants), nothing else.
        if text.count(_OLD_PREDICATE) != 2:
            raise RuntimeError("credits_debit no longer has the two grant predicates this migration replaces")
        schema_editor.execute(text.replace(_OLD_PREDICATE, _NEW_PREDICATE))


def restore_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_function_0006())


class Migration(migrations.Migration):

    dependencies = [
        ('credits', '0006_ledger_days_rollup'),
        ('subscriptions', '0021_rollup_keys_indexed_once'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='creditgrant',
            name='grant_consumption_order',
        ),
        migrations.RemoveIndex(
            model_name='creditgrant',
            name='grant_expiry_due',
        ),
        migrations.AddField(
            model_name='creditgrant',
            name='spendable',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.lookups.GreaterThan(models.F('remaining'), 0), output_field=models.BooleanField(), verbose_name='spendable'),
        ),
        migrations.AddIndex(
            model_name='creditgrant',
            index=models.Index(condition=models.Q(('spendable', True)), fields=['customer', 'priority', 'expires_at', 'id'], name='grant_consumption_order'),
        ),
        migrations.AddIndex(
            model_name='creditgrant',
            index=models.Index(condition=models.Q(('spendable', True)), fields=['expires_at'], name='grant_expiry_due'),
        ),
        migrations.RunPython(create_function, restore_function),
    ]
