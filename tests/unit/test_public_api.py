"""The package's public surface: every name in ``__all__`` exists, and the list is sorted."""

import smartkeys


def test_all_is_sorted_and_unique():
    assert list(smartkeys.__all__) == sorted(set(smartkeys.__all__))


def test_every_exported_name_resolves():
    missing = [name for name in smartkeys.__all__ if not hasattr(smartkeys, name)]
    assert missing == []


def test_every_exception_derives_from_the_single_root():
    exported_errors = [getattr(smartkeys, n) for n in smartkeys.__all__ if n.endswith("Error")]
    assert exported_errors, "expected exported exception classes"
    for cls in exported_errors:
        assert issubclass(cls, smartkeys.SmartKeysError), cls
