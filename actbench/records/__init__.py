"""The records layer: what a report row is, how it is written and read, and where reports go.

The lowest layer of actbench after `errors`: micro, train and compare build, write and read rows
through it, and it imports nothing else of actbench, so presentation (`report/`) and analysis
(`compare/`) can depend on it without depending on each other.
"""
