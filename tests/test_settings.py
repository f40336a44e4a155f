"""Settings: a bad or missing setting ends the program with one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL"}}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_without_token_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Setting BOT_TOKEN is invalid: it is required: set it in .env or the environment "
        "(see .env.example)"
    ]
    assert "Traceback" not in result.stderr


def test_malformed_setting_names_it(tmp_path: Path) -> None:
    result = run_cli("run", env={"BOT_TOKEN": "123:abc", "TIMEZONE": "Mars/Olympus"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Setting TIMEZONE is invalid: expected an IANA zone name such as Asia/Almaty"
    )


def test_token_read_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOT_TOKEN=42:from-dotenv\nADMIN_IDS=1, 2\n", encoding="utf-8")
    settings = load_settings()
    assert settings.bot_token.get_secret_value() == "42:from-dotenv"
    assert settings.admin_ids == frozenset({1, 2})
    assert settings.database_url.startswith("sqlite+aiosqlite:///./data/")
    assert settings.timezone == "Asia/Almaty"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("bot_token", "no-colon", "BOT_TOKEN"),
        ("admin_ids", "1,x", "ADMIN_IDS"),
        ("database_url", "mysql://x", "DATABASE_URL"),
        ("webhook_url", "ftp://x", "WEBHOOK_URL"),
        ("log_level", "LOUD", "LOG_LEVEL"),
    ],
)
def test_each_bad_setting_is_named(name: str, value: str, fragment: str) -> None:
    values = {"bot_token": "1:a", name: value}
    with pytest.raises(SettingsError, match=fragment):
        load_settings(**values)


def test_python_m_bot_and_invataxi_share_the_parser(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "migrate", "status", "bench"):
        assert command in result.stdout


def test_broken_districts_file_names_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "districts.toml"
    broken.write_text(
        '[[districts]]\nid = "aksu"\nname_kk = "Ақсу ауданы"\nname_ru = "Аксуский район"\n'
        'chat_id = "not a number"\n',
        encoding="utf-8",
    )
    result = run_cli(
        "check", env={"BOT_TOKEN": "1:a", "DISTRICTS_FILE": str(broken)}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert f"{broken}:5: districts.0.chat_id" in result.stderr


def test_example_districts_file_is_valid(tmp_path: Path) -> None:
    from bot.districts import load_districts

    spec = load_districts(ROOT / "districts.example.toml")
    ids = {d.id for d in spec.districts}
    assert ids == {
        "taldykorgan",
        "tekeli",
        "aksu",
        "alakol",
        "eskeldi",
        "karatal",
        "kerbulak",
        "koksu",
        "panfilov",
        "sarkand",
    }
