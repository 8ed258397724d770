"""The training stages, in the order they run: clip, intents, crops, clipseg."""
