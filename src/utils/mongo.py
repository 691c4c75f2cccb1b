"""The optional MongoDB record of a run (``mongo_url``), and keeping its password out of storage.

``redact_url`` is applied to the config before sacred stores it (config.json, the MongoDB run
document, checkpoints' saved configs) and to every message that names the server; the real URL
only reaches the MongoDB client. ``mongo_observer`` pings the server once at start-up, within
``MONGO_TIMEOUT_S`` seconds: unreachable -> one clear error, or with ``mongo_optional=True`` a
warning and the run keeps its file record only.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from utils.registry import MissingDependencyError

MONGO_TIMEOUT_S = 3.0   # server selection and connect timeout (pymongo's default is 30 s)


class MongoUnavailableError(ConnectionError):
    """``mongo_url`` names a server that does not answer (and ``mongo_optional`` is False)."""


def _password(url: str) -> Optional[str]:
    """The password part of ``scheme://user:password@hosts/...``, or None."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    netloc = rest.split("/", 1)[0]
    if "@" not in netloc:
        return None
    userinfo = netloc.rpartition("@")[0]
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


def redact_url(url: Optional[str]) -> Optional[str]:
    """``mongodb://alice:secret@host:27017/db`` -> ``mongodb://alice:***@host:27017/db``.

    URLs without a password (or None) come back unchanged."""
    if not url:
        return url
    password = _password(url)
    if not password:
        return url
    scheme, _, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}{slash}{tail}"


def scrub(text: str, url: Optional[str]) -> str:
    """``text`` with the password of ``url`` (if any) replaced by ``***`` wherever it occurs."""
    password = _password(url or "")
    return text.replace(password, "***") if password else text


def mongo_client(url: str, timeout_s: float = MONGO_TIMEOUT_S) -> Any:
    """A pymongo client that gives up on an unreachable server after ``timeout_s`` seconds."""
    try:
        import pymongo
    except ImportError:
        raise MissingDependencyError("mongo_url needs pymongo: pip install pymongo==4.20.0 "
                                     "(or leave mongo_url null).") from None
    ms = int(timeout_s * 1000)
    try:
        return pymongo.MongoClient(url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms)
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as exc:   # InvalidURI, bad port, ...
        raise ValueError(f"mongo_url={redact_url(url)!r} is not a usable MongoDB URI: "
                         f"{scrub(str(exc), url)}") from None


def mongo_observer(url: str, db_name: str, optional: bool, console: logging.Logger,
                   timeout_s: float = MONGO_TIMEOUT_S) -> Any:
    """A sacred MongoObserver for ``url`` once the server answered a ping, else None (when
    ``optional``, after a warning) or MongoUnavailableError."""
    import pymongo
    from sacred.observers import MongoObserver

    client = mongo_client(url, timeout_s)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        client.close()
        reason = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
        msg = (f"MongoDB at {redact_url(url)} did not answer within {timeout_s:g} s "
               f"({scrub(reason, url)[:200]}).")
        if optional:
            console.warning(f"{msg} mongo_optional=True: the run goes on with its file record only.")
            return None
        raise MongoUnavailableError(f"{msg} Start the server or fix mongo_url, or set mongo_optional=True "
                                    f"to run with the file record only.") from None
    return MongoObserver(client=client, db_name=db_name)
