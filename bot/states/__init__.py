"""FSM states, one StatesGroup per conversation, one module per feature."""
