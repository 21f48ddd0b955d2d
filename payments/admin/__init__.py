"""Back office for invoices, payments, refunds, customers' provider accounts and plans' provider prices.

Split by subject; importing the modules registers their ModelAdmins with the site. Each rail that has a
back office of its own (the Stripe webhook inbox) is an installed app whose admin Django loads itself.
"""

from payments.admin import credit_pack_orders, customers, invoices, payments, subscriptions

__all__ = ["credit_pack_orders", "customers", "invoices", "payments", "subscriptions"]
