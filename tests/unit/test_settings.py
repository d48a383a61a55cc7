"""Settings that fail loudly (DESIGN.md §7): defaults, TOML file, HOUNSFIELD_* variables."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from hounsfield.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative paths resolve against the working directory: make it a fresh one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_error(
    config_file: Path | None = None, environ: dict[str, str] | None = None
) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        load_settings(config_file, environ or {})
    return error.value


# Defaults ---------------------------------------------------------------------------------------


def test_defaults_are_the_readme_table(in_tmp: Path) -> None:
    settings = load_settings(None, {})
    data = (in_tmp / "data").resolve()
    assert settings.host == "127.0.0.1"
    assert settings.http_port == 8080
    assert settings.dimse_port == 11112
    assert settings.ae_title == "HOUNSFIELD"
    assert settings.data_dir == data
    assert settings.data_dir.is_absolute()
    assert settings.index_url == f"sqlite:///{data}/index.db"
    assert settings.blob_url == f"file://{data}/blobs"
    assert settings.staging_dir == data / "staging"
    assert settings.default_partition == "default"
    assert settings.duplicate_policy == "keep-first"
    assert settings.durable is True
    assert settings.cors_origins == ()
    assert settings.log_level == "INFO"
    assert settings.cache_url == "memory://"


def test_every_default_is_a_setting_and_every_setting_has_a_default() -> None:
    text = resources.files("hounsfield.config").joinpath("defaults.toml").read_text()
    assert set(tomllib.loads(text)) == {f.name for f in dataclasses.fields(Settings)}


def test_settings_are_frozen() -> None:
    settings = load_settings(None, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.http_port = 1  # type: ignore[misc]


def test_os_environ_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOUNSFIELD_HTTP_PORT", "8181")
    assert load_settings().http_port == 8181


# Overrides ---------------------------------------------------------------------------------------


def test_environment_overrides(in_tmp: Path) -> None:
    settings = load_settings(
        None,
        {
            "HOUNSFIELD_HTTP_PORT": " 9090 ",
            "HOUNSFIELD_AE_TITLE": "ARCHIVE1",
            "HOUNSFIELD_DURABLE": "off",
            "HOUNSFIELD_DATA_DIR": "state",
            "HOUNSFIELD_LOG_LEVEL": "debug",
            "HOUNSFIELD_REQUIRE_SERVICES": "1",  # not a setting: the test suite's switch
            "PATH": "/usr/bin",  # other variables are none of our business
            "HOUNSFIELD": "x",
        },
    )
    assert settings.http_port == 9090
    assert settings.ae_title == "ARCHIVE1"
    assert settings.durable is False
    assert settings.data_dir == (in_tmp / "state").resolve()
    assert settings.index_url == f"sqlite:///{in_tmp / 'state'}/index.db"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert load_settings(None, {"HOUNSFIELD_DURABLE": raw}).durable is expected


def test_file_overrides_defaults(in_tmp: Path) -> None:
    path = write_toml(
        in_tmp / "hounsfield.toml",
        'http_port = 8443\nae_title = "FROMFILE"\ndurable = false\n'
        'cors_origins = ["https://a.example", "https://b.example"]\n'
        'index_url = "sqlite:////var/lib/h/index.db"\n',
    )
    settings = load_settings(path, {})
    assert settings.http_port == 8443
    assert settings.ae_title == "FROMFILE"
    assert settings.durable is False
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.index_url == "sqlite:////var/lib/h/index.db"
    assert settings.dimse_port == 11112  # untouched keys keep their defaults


def test_environment_wins_over_file(in_tmp: Path) -> None:
    path = write_toml(in_tmp / "h.toml", 'http_port = 8443\nae_title = "FROMFILE"\n')
    settings = load_settings(path, {"HOUNSFIELD_HTTP_PORT": "9999"})
    assert settings.http_port == 9999
    assert settings.ae_title == "FROMFILE"


def test_config_file_from_environment(in_tmp: Path) -> None:
    path = write_toml(in_tmp / "h.toml", "dimse_port = 104\n")
    assert load_settings(None, {"HOUNSFIELD_CONFIG": str(path)}).dimse_port == 104


def test_explicit_config_file_wins_over_hounsfield_config(in_tmp: Path) -> None:
    explicit = write_toml(in_tmp / "a.toml", "dimse_port = 104\n")
    other = write_toml(in_tmp / "b.toml", "dimse_port = 105\n")
    assert load_settings(explicit, {"HOUNSFIELD_CONFIG": str(other)}).dimse_port == 104


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a,b", ("a", "b")),
        (" https://a.example , https://b.example ", ("https://a.example", "https://b.example")),
        ("*", ("*",)),
        ("a,,b,", ("a", "b")),
        ("", ()),
    ],
)
def test_cors_origins_list_from_environment(raw: str, expected: tuple[str, ...]) -> None:
    assert load_settings(None, {"HOUNSFIELD_CORS_ORIGINS": raw}).cors_origins == expected


def test_explicit_index_and_blob_urls_are_kept() -> None:
    settings = load_settings(
        None,
        {"HOUNSFIELD_INDEX_URL": "sqlite:///:memory:", "HOUNSFIELD_BLOB_URL": "memory://"},
    )
    assert (settings.index_url, settings.blob_url) == ("sqlite:///:memory:", "memory://")


# Failing loudly ---------------------------------------------------------------------------------


def test_unknown_key_in_environment_is_named() -> None:
    error = config_error(environ={"HOUNSFIELD_HTTP_PROT": "80"})
    assert "HOUNSFIELD_HTTP_PROT" in str(error)


def test_unknown_key_in_file_is_named(in_tmp: Path) -> None:
    path = write_toml(in_tmp / "h.toml", "http_port = 80\nae_titel = 'X'\n")
    error = config_error(path)
    assert "'ae_titel'" in str(error)
    assert str(path) in str(error)


def test_table_in_file_is_an_unknown_key(in_tmp: Path) -> None:
    path = write_toml(in_tmp / "h.toml", "[server]\nhttp_port = 80\n")
    assert "'server'" in str(config_error(path))


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("http_port", "abc"),
        ("http_port", "70000"),
        ("http_port", "-1"),
        ("dimse_port", "1.5"),
        ("durable", "maybe"),
        ("durable", ""),
        ("ae_title", "A" * 17),
        ("ae_title", ""),
        ("ae_title", "   "),
        ("ae_title", "BACK\\SLASH"),
        ("ae_title", "TAB\tAE"),
        ("duplicate_policy", "bogus"),
        ("log_level", "verbose"),
        ("index_url", "mysql://db/hounsfield"),
        ("blob_url", "ftp://bucket/prefix"),
        ("cache_url", "memcached://127.0.0.1:11211"),
        ("qido_max_limit", "0"),
        ("http_workers", "0"),
        ("dimse_workers", "0"),
        ("bulk_data_threshold", "-5"),
        ("pending_grace_seconds", "-1"),
        ("max_request_bytes", "-1"),
    ],
)
def test_bad_value_in_environment_is_named(name: str, raw: str) -> None:
    error = config_error(environ={f"HOUNSFIELD_{name.upper()}": raw})
    assert f"'{name}'" in str(error)


def test_dimse_workers_need_a_fixed_port() -> None:
    """Each DIMSE worker binds the port itself: port 0 would give each a different one."""
    error = config_error(environ={"HOUNSFIELD_DIMSE_WORKERS": "2", "HOUNSFIELD_DIMSE_PORT": "0"})
    assert "'dimse_port'" in str(error)
    settings = load_settings(None, {"HOUNSFIELD_DIMSE_WORKERS": "2"})
    assert settings.dimse_workers == 2
    assert load_settings(None, {}).dimse_workers == 1


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ('http_port = "abc"', "http_port"),
        ("http_port = 70000", "http_port"),
        ("http_port = 80.0", "http_port"),
        ("http_port = true", "http_port"),  # a TOML boolean is not an integer
        ('durable = "maybe"', "durable"),
        ("durable = 1", "durable"),
        ("ae_title = 42", "ae_title"),
        ('ae_title = "ABCDEFGHIJKLMNOPQ"', "ae_title"),
        ('duplicate_policy = "overwrite"', "duplicate_policy"),
        ("cors_origins = [1, 2]", "cors_origins"),
        ("cors_origins = 5", "cors_origins"),
        ('index_url = "mysql://x"', "index_url"),
    ],
)
def test_bad_value_in_file_is_named(in_tmp: Path, line: str, name: str) -> None:
    path = write_toml(in_tmp / "h.toml", line + "\n")
    assert f"'{name}'" in str(config_error(path))


def test_ae_title_of_sixteen_characters_is_fine() -> None:
    assert load_settings(None, {"HOUNSFIELD_AE_TITLE": "A" * 16}).ae_title == "A" * 16


@pytest.mark.parametrize("port", ["0", "65535"])
def test_port_bounds(port: str) -> None:
    assert load_settings(None, {"HOUNSFIELD_DIMSE_PORT": port}).dimse_port == int(port)


def test_unreadable_or_invalid_file(in_tmp: Path) -> None:
    missing = in_tmp / "missing.toml"
    assert str(missing) in str(config_error(missing))
    broken = write_toml(in_tmp / "broken.toml", "http_port = = 1\n")
    assert str(broken) in str(config_error(broken))


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
