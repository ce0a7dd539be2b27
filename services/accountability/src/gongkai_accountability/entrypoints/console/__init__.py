"""The inspectors' console: pages in Chinese (English from a catalogue) over the log as of a day."""

from gongkai_accountability.entrypoints.console.routes import build_console_router

__all__ = ["build_console_router"]
