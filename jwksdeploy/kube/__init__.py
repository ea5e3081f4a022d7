"""The cluster edge: the one HTTP client and the pure facts about Kubernetes objects."""
