"""`cardscan users`: create users and their API tokens."""

import typer

app = typer.Typer(help="Users and their API tokens.", no_args_is_help=True)


def _migrated() -> None:
    from db.migrate import DatabaseNotMigratedError, require_migrated

    try:
        require_migrated()
    except DatabaseNotMigratedError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def create(
    name: str = typer.Argument(..., help="Unique user name."),
    role: str = typer.Option("user", help="user, annotator or admin."),
) -> None:
    """Create a user and print a new bearer token (the last line; it is shown only once)."""
    from db import users
    from db.pool import connection

    try:
        role_value = users.Role(role)
    except ValueError as exc:
        raise typer.BadParameter("role must be user, annotator or admin") from exc
    _migrated()
    with connection() as conn, conn.transaction():
        if users.get_user_by_name(conn, username=name) is not None:
            typer.echo(f"user {name!r} already exists; use `cardscan users token {name}`", err=True)
            raise typer.Exit(1)
        user = users.create_user(conn, username=name, role=role_value)
        token = users.issue_token(conn, user_id=user.id, name="cli")
    typer.echo(f"created {role_value} {name} ({user.id})")
    typer.echo(token)


@app.command()
def token(name: str = typer.Argument(..., help="An existing user.")) -> None:
    """Issue another bearer token for an existing user (printed as the last line)."""
    from db import users
    from db.pool import connection

    _migrated()
    with connection() as conn, conn.transaction():
        user = users.get_user_by_name(conn, username=name)
        if user is None:
            typer.echo(f"no user {name!r}", err=True)
            raise typer.Exit(1)
        new_token = users.issue_token(conn, user_id=user.id, name="cli")
    typer.echo(new_token)
