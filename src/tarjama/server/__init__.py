"""The Tarjama server: servicer, batcher, engines, text pipeline and startup, one module each.

Importing this package is cheap (no torch); the engines import their frameworks when loaded.
"""
