"""coursekit: course tooling (exercises, checks, grading)."""
