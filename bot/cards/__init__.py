"""Cards in dispatcher chats (rides, verifications), rendered from the database when sent."""
