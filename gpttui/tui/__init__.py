"""The Textual app. Only this package imports textual; domain modules stay headless."""
