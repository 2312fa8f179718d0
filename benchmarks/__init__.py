"""carol-bench: every exported file x runtime, side by side in one run."""
