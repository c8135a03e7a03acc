from typer.testing import CliRunner

from nodescope import __version__
from nodescope.cli import app

runner = CliRunner()


def test_help_lists_stages():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in ("data", "demo", "version"):
        assert stage in result.output


def test_version_prints_version():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert __version__ in result.output
