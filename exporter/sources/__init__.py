"""Where data comes from: provider APIs, pushed usage, CSV imports, subscriptions."""
