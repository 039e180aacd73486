from pitpass.cli import main

main()
