"""Routing: rules file, matching in Finnish, Swedish and English, explanations."""
