"""The arena in the browser (Gradio): anonymous battles, named side by side, the live leaderboard, downloads.

``arena_ui.arena`` holds the server-side state (models, battles, limits, leaderboard cache) and knows
nothing of Gradio; ``arena_ui.app`` builds the UI on it; ``arena_ui.serve`` is what ``codearena serve`` runs.
"""
