"""The month-to-date core: records, pricing, the ledger, budgets and snapshots."""
