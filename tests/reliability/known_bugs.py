"""Library bugs this suite found and that are not fixed yet: the reasons of its strict
xfail markers, in one place. Delete an entry (and its markers) once the fix lands.

``raw.KNOWN_BUGS`` is where a corruption case would be marked.
"""
