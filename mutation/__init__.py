"""Mutation testing of the judging modules (not part of the product: see run.py)."""
