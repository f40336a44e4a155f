"""Domain rules as plain Python: nothing here imports aiogram."""
