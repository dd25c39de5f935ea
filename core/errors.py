"""Errors that reach the user: one clear line naming the input and what is wrong."""


class HandmocapError(Exception):
    """Base class of errors that the command line prints as one line (exit status 2)."""


class ModelFileError(HandmocapError):
    """A hand model file (MANO pickle or the open model) cannot be used."""


class TakeError(HandmocapError):
    """A take on disk is missing, corrupt, of another format version, or inconsistent."""
