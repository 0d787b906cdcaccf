"""The values a script hands the client, made ready for JSON: :class:`Config` (the run's
configuration, a dict read by attribute too), the merge of a sweep's values over a script's
defaults, and the conversion of config, summary and metric values (numpy and torch scalars
included; NaN and infinities become null).
"""

import collections.abc
import math
import numbers


class Config(dict):
    """The run's configuration: a ``dict`` whose keys can also be read as attributes.

    Nested mappings are ``Config`` objects too, so ``config.optimizer.lr`` and
    ``config["optimizer"]["lr"]`` are the same value. ``in``, ``get``, iteration, ``len``,
    ``dict(config)`` and ``json.dumps(config)`` work as for any dict; :meth:`as_dict` returns a
    deep copy made of plain dicts. Setting a key (``config.seed = 1`` or ``config["seed"] = 1``)
    changes it in this process only: the server keeps the config the run started with.
    """

    __slots__ = ()

    def __init__(self, data=None, **kwargs):
        """Build a config from a mapping and/or keyword arguments; nested dicts are copied."""
        super().__init__()
        self.update(data or {}, **kwargs)

    def __setitem__(self, key, value):
        if isinstance(value, collections.abc.Mapping) and not isinstance(value, Config):
            value = Config(value)
        super().__setitem__(key, value)

    def update(self, other=(), **kwargs):
        """Set keys from a mapping (or an iterable of pairs) and keyword arguments."""
        if isinstance(other, collections.abc.Mapping):
            other = other.items()
        for key, value in other:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def setdefault(self, key, default=None):
        """Return ``config[key]``, first setting it to ``default`` when it is missing."""
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self):
        """A deep copy, as a ``Config``."""
        return Config(self.as_dict())

    def as_dict(self):
        """A deep copy made of plain ``dict`` objects (lists are copied too)."""
        return _plain(self)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                "config has no key %r (keys: %s)" % (name, ", ".join(map(str, self)) or "none")
            ) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self):
        return sorted(set(dir(type(self))) | {k for k in self if isinstance(k, str)})

    def __repr__(self):
        return "Config(%r)" % (_plain(self),)

    def __reduce__(self):
        return (Config, (_plain(self),))


def _plain(value):
    if isinstance(value, collections.abc.Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _deep_merge(defaults, override):
    """``defaults`` with ``override`` laid over it, mappings merged key by key."""
    merged = Config(defaults)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, collections.abc.Mapping) and isinstance(
            value, collections.abc.Mapping
        ):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _overridden(given, sweep):
    """Whether laying ``sweep`` over ``given`` changes a value ``given`` holds."""
    if isinstance(given, collections.abc.Mapping) and isinstance(sweep, collections.abc.Mapping):
        return any(k in sweep and _overridden(v, sweep[k]) for k, v in given.items())
    return _plain(given) != _plain(sweep)


def _jsonable(value):
    """A JSON-ready copy of a config or summary value: NaN and infinities become None,
    unknown objects their ``str()``."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, collections.abc.Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item) and not isinstance(value, (bytes, bytearray)):
        try:
            return _jsonable(item())
        except Exception:
            pass
    return str(value)


def _metric_value(key, value):
    """A logged value as JSON: a number, or None for NaN and infinities."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None:
        return None
    item = getattr(value, "item", None)  # numpy scalars, 0-d arrays, one-element tensors
    if callable(item) and not isinstance(value, (str, bytes, bytearray)):
        try:
            scalar = item()
        except Exception:
            scalar = None
        if isinstance(scalar, (bool, numbers.Real)):
            return _metric_value(key, scalar)
    if isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex):
        # Numbers outside the numeric tower's Real (decimal.Decimal): what float() makes of
        # them, as Optuna takes any value float() accepts.
        try:
            return _metric_value(key, float(value))
        except (TypeError, ValueError, OverflowError):
            pass
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    raise TypeError(
        "hyperdial: the value logged for %r must be a number (int, float or bool), got %s %s"
        % (key, type(value).__name__, text)
    )


def _flatten_values(data, prefix, out):
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise TypeError(
                "hyperdial: metric names must be non-empty strings, got %r" % (key,)
            )
        name = prefix + key
        if isinstance(value, collections.abc.Mapping):
            _flatten_values(value, name + ".", out)
        else:
            out[name] = _metric_value(name, value)
    return out
