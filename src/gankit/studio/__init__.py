"""gankit studio: a web page over trained runs, with human evaluation stored in SQLite."""
