from throughline.cli import main

main()
