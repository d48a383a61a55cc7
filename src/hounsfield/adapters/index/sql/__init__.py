"""SQL shared by the index adapters (SQLite now, PostgreSQL later): indexed columns, the
compilation of the query AST into WHERE clauses, row assembly and migration discovery."""
