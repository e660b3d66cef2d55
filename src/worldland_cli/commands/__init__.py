"""One module per command group; each imports only typer and stdlib at module level."""
