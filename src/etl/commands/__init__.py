"""The ``etl`` commands beyond the core ones in :mod:`etl.cli`, one module per theme.

Each module imports only click at the top, so that ``etl --help`` stays fast; the work is
imported inside each command.
"""
