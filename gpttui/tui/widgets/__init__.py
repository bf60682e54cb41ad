"""Small display widgets shared by the screens (bars, charts, estimate panel)."""
