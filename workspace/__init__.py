"""The persistent workspace: templates and their versions, runs, salience results, notes,
saved comparisons and each browser's last state, in SQLite (default) or PostgreSQL."""
