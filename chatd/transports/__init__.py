"""Transport adapters: thin Twisted protocols that feed bytes to a
``chatd.connection.Connection`` and write what it gives back."""
