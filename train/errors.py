"""Errors whose message is meant for the user, raised without importing TensorFlow."""


class ModelFileError(Exception):
    """A saved model is missing or unreadable; the message says which file and why."""
