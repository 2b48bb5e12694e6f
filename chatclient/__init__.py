"""chat-tui: the full-screen terminal client for chatd."""
