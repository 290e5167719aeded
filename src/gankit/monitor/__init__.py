"""What a person looks at: image grids, GIFs, loss plots, JSONL/TensorBoard logs, health checks."""
