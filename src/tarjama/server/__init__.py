"""The Tarjama server: the doors, the request and document stage, the pipeline, the batcher, the engines
and start-up, a package or module each (the README's "How it works" walks them).

Importing this package is cheap (no torch); the engines import their frameworks when loaded.
"""
