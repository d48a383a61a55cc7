"""DIMSE front end (PS3.7/PS3.8): an asyncio upper-layer server and its service handlers."""
