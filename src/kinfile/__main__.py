from kinfile.cli import main

main()
