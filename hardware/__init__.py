"""Device drivers behind small interfaces, each with a simulated twin."""
