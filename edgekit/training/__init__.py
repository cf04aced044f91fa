"""Training: fitting zoo models on a user's labelled pictures."""
