"""Developer tools that are not part of the pipeline (GPU check bundle)."""
