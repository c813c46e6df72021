"""Running the stack: the Rasa env, model training with a cache, and the process launcher."""
