"""Back office for invoices, payments, refunds and the Stripe webhook inbox.

Split by subject; importing the modules registers their ModelAdmins with the site.
"""

from payments.admin import customers, invoices, payments, webhooks

__all__ = ["customers", "invoices", "payments", "webhooks"]
