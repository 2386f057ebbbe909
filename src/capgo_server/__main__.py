from capgo_server.cli import main

main()
