from bihuan.cli import main

main()
