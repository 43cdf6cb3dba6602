"""The inference API: a FastAPI service that classifies FashionMNIST-style pictures with the newest good model."""
