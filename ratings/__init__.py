"""Ratings: battles in, leaderboards out. Pure functions on DataFrames and arrays; no web, no model calls."""

from ratings.leaderboard import leaderboard

__all__ = ["leaderboard"]
