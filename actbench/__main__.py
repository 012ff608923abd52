"""python -m actbench"""

from .cli import main

main()
