from dinhdanh.cli import main

main()
