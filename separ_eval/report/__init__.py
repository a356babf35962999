"""Results: the schema (defined once), separability, names, storage, and rendering (tables, pages, plots)."""
