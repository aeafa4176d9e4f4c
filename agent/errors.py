"""One error tree for the unit agent; each error says whether retrying is safe.

Commands turn an AgentError into one clear line on stderr and exit status 2 (see cli.py).
"""


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    retry_safe: bool = False


class ConfigError(AgentError):
    """The unit configuration is invalid: fix the file, do not retry."""


class InputError(AgentError):
    """A file or device given to a command is missing, unreadable or not video: do not retry."""


class TransientError(AgentError):
    """A passing failure (network cut, camera hiccup): safe to retry after a wait."""

    retry_safe = True


class PermanentError(AgentError):
    """A definitive refusal (access denied, bad request): retrying unchanged will not help."""


class SourceError(TransientError):
    """A camera source failed to open or stopped delivering frames; it is reopened with backoff."""
