"""`python -m clevermail` is the `clevermail` command."""
from clevermail.cli import main

if __name__ == "__main__":
    main()
