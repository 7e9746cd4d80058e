"""Past months of every configured account: the chargeback report and the Prometheus backfill."""
