"""Back office for invoices, payments, refunds and the Stripe webhook inbox.

Split by subject; importing the modules registers their ModelAdmins with the site.
"""

from payments.admin import credit_pack_orders, customers, invoices, payments, subscriptions

# Each rail registers its own back office (the Stripe webhook inbox).
from payments.providers.stripe import admin as stripe_admin

__all__ = ["credit_pack_orders", "customers", "invoices", "payments", "stripe_admin", "subscriptions"]
