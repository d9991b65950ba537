"""Ratings: battles in, leaderboards out. Pure functions on DataFrames and arrays; no web, no model calls."""

from ratings.leaderboard import RatingResult, bootstrap_ratings, leaderboard, rate

__all__ = ["RatingResult", "bootstrap_ratings", "leaderboard", "rate"]
