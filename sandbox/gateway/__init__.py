"""The fleet gateway: discovers workers on unix sockets and routes requests to them."""
