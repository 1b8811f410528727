"""smartkeys: scoped, expiring, revocable on-chain keys for AI agents."""

__version__ = "0.1.0"
