"""The Lemon Squeezy rail: a merchant of record that bills the customer itself (docs/lemonsqueezy.md)."""
