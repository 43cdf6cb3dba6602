"""HTTP routes, one router per concern: predictions, test-image samples, health/readiness/metrics, and model
versions (list, pin, unpin)."""
