"""Photo evidence: the upload pipeline, anti-fraud flags, resumable (tus) uploads, variants, retention."""
