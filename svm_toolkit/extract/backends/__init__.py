"""One module per extractor family; torch and the architectures are imported lazily."""
