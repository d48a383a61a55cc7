"""Configuration: frozen settings from defaults, a TOML file and HOUNSFIELD_* variables."""

from hounsfield.config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
