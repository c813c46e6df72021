from relance.cli.main import app

app()
