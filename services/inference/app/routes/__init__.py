"""HTTP routes, one router per concern: predictions, test-image samples, and health/readiness/metrics."""
