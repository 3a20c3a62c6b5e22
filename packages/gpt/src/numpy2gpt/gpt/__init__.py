"""numpy2gpt.gpt: nanoGPT in NumPy."""
