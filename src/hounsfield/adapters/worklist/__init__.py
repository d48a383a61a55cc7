"""Worklist store adapters."""
