"""The inspectors' console: pages in Chinese (English from a catalogue) over the log as of a day.

The router is in ``routes`` (FastAPI and the PDF library behind it); importing the package
itself stays light, because the command line reads ``views`` without serving pages.
"""
