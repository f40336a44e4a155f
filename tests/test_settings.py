"""Settings: a bad or missing setting ends the program with one line and exit status 2."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import TOKEN_HELP, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> Ran:
    """The command line as an operator runs it, in this process: what it prints and its exit
    status (the program itself is started for real by the two tests marked so below)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("BOT_TOKEN", "DATABASE_URL"):
            patch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())


def run_program(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot ...` in a process of its own, as typed in a terminal."""
    clean = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL"}}
    clean["PYTHONPATH"] = str(ROOT)
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
    result = run_program("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"Setting BOT_TOKEN is invalid: it is required: {TOKEN_HELP}"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("token", "what"),
    [
        ("123456789:replace-with-your-token", "placeholder"),
        ("123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11", "placeholder"),
        ("bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "not a bot token"),
        ("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw extra", "not a bot token"),
        ("123456789", "not a bot token"),
    ],
)
def test_placeholder_or_malformed_token_is_one_line_saying_where_to_get_one(
    tmp_path: Path, token: str, what: str
) -> None:
    """The README's first run with the untouched .env.example must not reach Telegram."""
    (tmp_path / ".env").write_text(f"BOT_TOKEN={token}\n", encoding="utf-8")
    for command in ("run", "check"):
        result = run_cli(command, cwd=tmp_path)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Setting BOT_TOKEN is invalid:")
        assert what in lines[0]
        assert "@BotFather" in lines[0] and ".env" in lines[0]
        secret = token.partition(":")[2]
        assert not secret or secret not in lines[0]  # a secret is never echoed


def test_example_env_token_is_refused() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    token = next(
        line.split("=", 1)[1] for line in example.splitlines() if line.startswith("BOT_TOKEN=")
    )
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings(bot_token=token)


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
    result = run_program("--help", cwd=tmp_path)
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


def test_check_warns_about_districts_that_cannot_work(tmp_path: Path) -> None:
    """The untouched example is valid, but every district lacks a dispatcher and a phone."""
    result = run_cli(
        "check",
        env={"BOT_TOKEN": "1:a", "DISTRICTS_FILE": str(ROOT / "districts.example.toml")},
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "settings ok; 10 districts"
    warnings = result.stderr.strip().splitlines()
    assert "warning:" in warnings[0] and "aksu: no vehicles" in result.stderr
    assert sum("no desk_phone" in w for w in warnings) == 10
