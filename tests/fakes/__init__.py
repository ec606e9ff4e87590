"""Local stand-ins for outside services, spoken to over real sockets (never mocks of our own code)."""
