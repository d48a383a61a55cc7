"""Cache adapters, chosen by URL (memory://, redis://)."""
