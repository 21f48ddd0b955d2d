"""The billing run: trials, renewals, credit expiry, collection and dunning, each a resumable step that
claims its work in batches (`select_for_update(skip_locked=True)`, one transaction per batch) so that
several workers can run at once, a killed run resumes, and nothing is billed twice.

`run.billing_run` orchestrates the steps; `preview` and `verify` are the read-only commands."""
