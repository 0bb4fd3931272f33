"""filmgenre: film genre classification from posters and overviews, and the report on it."""


class FilmgenreError(Exception):
    """A problem the user can fix (bad input, a stage not run yet): the message says how.

    The CLI prints these as one line and exits with status 2, instead of a traceback.
    """
