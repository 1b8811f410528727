"""Keep secrets out of the frames an exception carries.

An exception's ``__traceback__`` holds every frame it passed through, and each frame its local variables.
Error reporters that record locals (Sentry, rich tracebacks, ``traceback.TracebackException(capture_locals=True)``)
would then store the private key or passphrase a parser was looking at when it refused a typo. Messages are
already secret-free (see :class:`smartkeys.errors.InvalidInputError` ``secret=True``); this module makes the
frames secret-free too.

:func:`secret_frames_dropped` wraps a function that handles a secret (parses a key, reads a password,
decrypts a keystore). Whatever it raises leaves it with no frame of the function or its callees, no chained
``__cause__``/``__context__`` (those carry their own tracebacks), and -- for anything that is not a
:class:`~smartkeys.errors.SmartKeysError`, whose messages are written not to quote secrets -- a generic
message instead of the original one (a library's ``ValueError`` may quote the value). The wrapper's own
frame, the first of the new traceback, keeps no reference to the arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from smartkeys.errors import SmartKeysError

__all__ = ["SecretHandlingError", "secret_frames_dropped"]

F = TypeVar("F", bound=Callable[..., Any])


class SecretHandlingError(SmartKeysError):
    """An unexpected error while handling a secret; its details are withheld because they may quote it."""


def _cleaned(error: BaseException, name: str) -> BaseException:
    if isinstance(error, Exception) and not isinstance(error, SmartKeysError):
        error = SecretHandlingError(
            f"{name} failed with {type(error).__name__} while handling secret input (details withheld: they may "
            "quote the secret); fix: check the key or password source, and report a bug if it persists"
        )
    error.__traceback__ = None
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    return error


def secret_frames_dropped(func: F) -> F:
    """Decorator: exceptions leave ``func`` without its frames, chained exceptions or (if untyped) message.

    ``KeyboardInterrupt`` and other ``BaseException``s keep their type but lose their frames too.
    """
    name = func.__qualname__

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside the handler (no __context__)
            error = _cleaned(exc, name)
        del args, kwargs  # the secret must not be a local of the frame that raises
        raise error

    return guarded  # type: ignore[return-value]
