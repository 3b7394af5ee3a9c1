"""Conversations: a case's user turns run one by one, each reply fed back into the next request."""
