"""Training the sources' recipes: datasets, the trainer, result files."""
