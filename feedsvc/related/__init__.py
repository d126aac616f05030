"""Related posts: `tokenize` turns text into terms, `engine` ranks related documents.

Both are pure (no database, no Flask); the segmenter loads on first use, not on import.
"""
