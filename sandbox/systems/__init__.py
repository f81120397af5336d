"""The five systems of the sandbox firm, each with its own API shape."""
