"""digest: recurring email digests, rendered once per issue and delivered exactly once."""

__version__ = "0.1.0"
