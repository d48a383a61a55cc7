"""Blob store adapters, chosen by URL (file://, memory://)."""
