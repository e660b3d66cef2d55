"""Where the CLI keeps its files and how a setting is chosen: flag > env > config.toml > default.

Every command (and the daemon, transfer and diag code) reads settings through :func:`load`, so
``--hub``, ``WORLDLAND_HUB`` and ``hub = "..."`` in ``config.toml`` mean the same thing
everywhere and docs/configuration.md can describe one rule. ``WORLDLAND_HOME`` moves the
whole directory (tests point it at a temporary one).

Only the standard library is imported here: this module is loaded by ``worldland --help``.
"""

from __future__ import annotations

import logging
import os
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from worldland_cli.errors import ActionableError
from worldland_cli.urls import mask_url

if TYPE_CHECKING:
    from worldland_cli.host import Host

log = logging.getLogger(__name__)

DEFAULT_HUB = "http://127.0.0.1:8080"
DEFAULT_PRICE_PER_SEC_WEI = 1_000_000_000

Source = Literal["flag", "env", "file", "default"]


class ConfigError(ActionableError):
    """config.toml is unreadable or a value is not what its key needs."""

    exit_code = 2


# The names of what lives in home(); every path to them is built from these (the support
# bundle inspects another root's home by the same names).
CONFIG_NAME = "config.toml"
SESSION_NAME = "session.json"
PRIVATE_KEY_NAME = "private-key.txt"
CERTS_NAME = "certs"
NODE_NAME = "node.json"
DAEMON_NAME = "daemon"


def home() -> Path:
    """WORLDLAND_HOME, else ~/.worldland: config, session, wallet key, certs, node id."""
    raw = os.environ.get("WORLDLAND_HOME")
    return Path(raw).expanduser().absolute() if raw else Path.home() / ".worldland"


def config_file() -> Path:
    return home() / CONFIG_NAME


def session_file() -> Path:
    """The bearer token, its hub, wallet address and expiry (written 0600)."""
    return home() / SESSION_NAME


def default_private_key_file() -> Path:
    """The seed's wallet key location (``~/.worldland/private-key.txt``)."""
    return home() / PRIVATE_KEY_NAME


def default_cert_dir() -> Path:
    """node.key (0600), node.crt and ca.crt live here unless --cert-dir says otherwise."""
    return home() / CERTS_NAME


def node_file() -> Path:
    """The node id (and the hub and host it was registered with) after ``worldland register``."""
    return home() / NODE_NAME


def daemon_dir() -> Path:
    """The node daemon's state (its usage outbox) unless ``--state-dir`` says otherwise."""
    return home() / DAEMON_NAME


@dataclass(frozen=True)
class Key:
    """One setting: its config.toml name, environment variable, default and meaning."""

    name: str
    env: str
    help: str
    kind: Literal["str", "int", "url", "path"] = "str"
    default: str | None = None


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("hub", "WORLDLAND_HUB", "hub URL (http:// or https://)", "url", DEFAULT_HUB),
        Key("hub_ca", "WORLDLAND_HUB_CA", "CA bundle that signed a TLS hub's certificate", "path"),
        Key(
            "siwe_domain",
            "WORLDLAND_SIWE_DOMAIN",
            "the hub's SIWE domain, host:port of its URL: a login to any other hub is refused",
        ),
        Key("chain_id", "WORLDLAND_CHAIN_ID", "SIWE chain id (default: the hub's first)", "int"),
        Key(
            "private_key_file",
            "WORLDLAND_PRIVATE_KEY_FILE",
            "wallet private key file (64 hex characters, mode 0600)",
            "path",
        ),
        Key("cert_dir", "WORLDLAND_CERT_DIR", "node.key, node.crt and ca.crt", "path"),
        Key("host", "WORLDLAND_HOST", "address renters reach this node at (register)"),
        Key("gpu_type", "WORLDLAND_GPU_TYPE", "GPU model to register instead of NVML's name"),
        Key("memory_gb", "WORLDLAND_MEMORY_GB", "GPU memory (GB) instead of NVML's", "int"),
        Key(
            "price_per_sec",
            "WORLDLAND_PRICE_PER_SEC",
            "price per GPU-second in wei",
            "int",
            str(DEFAULT_PRICE_PER_SEC_WEI),
        ),
    )
}


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from (``config show`` prints both)."""

    key: str
    value: str | None
    source: Source


def _dynamic_default(name: str) -> str | None:
    if name == "private_key_file":
        return str(default_private_key_file())
    if name == "cert_dir":
        return str(default_cert_dir())
    return KEYS[name].default


def _looks_like_private_key(text: str) -> bool:
    """64 hex digits (0x optional): a wallet key pasted where its file name belongs."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    return len(digits) == 64 and all(c in string.hexdigits for c in digits)


def validate(name: str, value: str) -> str:
    """The value in canonical form, or ConfigError naming the key and what it needs."""
    key = KEYS.get(name)
    if key is None:
        known = ", ".join(KEYS)
        raise ConfigError(f"unknown setting {name!r}", f"known settings: {known}")
    text = value.strip()
    if not text:
        raise ConfigError(f"{name} must not be empty")
    if key.kind == "int":
        if not text.isdigit():
            raise ConfigError(f"{name} must be a non-negative whole number, got {text!r}")
        return str(int(text))
    if key.kind == "url":
        return _url(name, text)
    if key.kind == "path":
        if _looks_like_private_key(text):
            # Never echo it: it would land in the terminal, config.toml (0644) and tickets.
            raise ConfigError(
                f"{name} must name a file, but the value looks like a private key itself",
                "put the key in a file only you can read (chmod 600 FILE) and give that "
                "file's path; if the key was shared or stored anywhere, move to a new wallet",
            )
        return str(Path(text).expanduser())
    return text


def _url(name: str, text: str) -> str:
    """An http(s) URL a hub can be reached at (what auth/origin.py accepts, which this layer
    cannot import), without a trailing slash; the error shows it with any password masked."""
    parts = urlsplit(text if "://" in text else f"http://{text}")
    try:
        port = parts.port  # None when absent
    except ValueError:  # not a number, or above 65535
        port = 0
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == 0
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in text)
    ):
        raise ConfigError(
            f"{name} must be an http:// or https:// URL with a host and, if any, a port "
            f"from 1 to 65535 (no spaces, query or fragment), got {mask_url(text)!r}",
            "for example: https://hub.example.org:8443",
        )
    return urlunsplit(parts).rstrip("/")


class Config:
    """Settings from the environment and config.toml; flags are passed to :meth:`get`."""

    def __init__(self, file_values: Mapping[str, str], env: Mapping[str, str]) -> None:
        self.file_values = dict(file_values)
        self.env = dict(env)

    def resolve(self, name: str, flag: object = None) -> Setting:
        """Apply the precedence rule to one key; a flag given as None means "not given"."""
        key = KEYS[name]
        if flag is not None and str(flag) != "":
            return Setting(name, validate(name, str(flag)), "flag")
        env_value = self.env.get(key.env)
        if env_value:
            return Setting(name, validate(name, env_value), "env")
        if name in self.file_values:
            return Setting(name, self.file_values[name], "file")
        return Setting(name, _dynamic_default(name), "default")

    def get(self, name: str, flag: object = None) -> str | None:
        return self.resolve(name, flag).value

    def get_int(self, name: str, flag: object = None) -> int | None:
        value = self.get(name, flag)
        return None if value is None else int(value)

    def cert_dir(self, flag: str | None = None) -> str:
        """Where node.key, node.crt and ca.crt are: ``--cert-dir``, WORLDLAND_CERT_DIR,
        config.toml, else ~/.worldland/certs. Everything that reads or writes them (certs,
        register, doctor, diag) asks here, so none of them looks in another place."""
        return self.get("cert_dir", flag) or str(default_cert_dir())


def _file_host() -> Host:
    from worldland_cli.host import Host

    return Host(root=Path("/"))


def read_file_values(host: Host | None = None) -> dict[str, str]:
    """config.toml's known keys as validated strings; a broken file is a ConfigError."""
    path = config_file()
    text = (host or _file_host()).read_text(str(path))
    if text is None:
        log.debug("no config file at %s: defaults and environment only", path)
        return {}
    log.debug("reading settings from %s", path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{path} is not valid TOML: {e}",
            f"fix the file or set values again with `worldland config set KEY VALUE` "
            f"after moving it away: mv {path} {path}.broken",
        ) from None
    values: dict[str, str] = {}
    for name, value in raw.items():
        if name not in KEYS:
            continue  # a newer CLI's settings must not break this one
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"{path}: {name} must be a string or a number")
        values[name] = validate(name, str(value))
    return values


def check_ca_bundle(host: Host, path: str) -> None:
    """ConfigError naming ``path`` unless it is a readable file of PEM certificates."""
    import ssl

    from worldland_cli.host import HostError

    hint = (
        "give the PEM certificate of the CA that signed the hub's TLS certificate (its "
        "operator has it: worldland-hub keeps it in DATA_DIR/ca/ca.pem)"
    )
    try:
        text = host.read_text(path)
    except HostError as e:
        raise ConfigError(f"hub_ca: {e}", hint) from None
    if text is None:
        raise ConfigError(f"hub_ca: {path} does not exist", hint)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise ConfigError(f"hub_ca: {path} holds no PEM certificate", hint) from None


def load(host: Host | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The configuration every command starts from."""
    return Config(read_file_values(host), os.environ if env is None else env)


def set_value(name: str, value: str, host: Host | None = None) -> str:
    """Validate and store one key in config.toml (atomically); return the stored value.

    A path is stored absolute: the file is read later from whatever directory a command runs
    in. The hub's CA bundle must be there and hold a certificate now, or every TLS call
    would fail later far from the cause. Other keys and unknown keys already in the file
    are kept as they were.
    """
    import toml

    stored = validate(name, value)
    h = host or _file_host()
    if KEYS[name].kind == "path":
        stored = str(Path(stored).absolute())
    if name == "hub_ca":
        check_ca_bundle(h, stored)
    path = config_file()
    text = h.read_text(str(path))
    try:
        document = tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", f"fix or remove {path}") from None
    document[name] = int(stored) if KEYS[name].kind == "int" else stored
    h.write_atomic(str(path), toml.dumps(document), mode=0o644)
    return stored
