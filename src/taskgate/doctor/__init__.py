"""``taskgate doctor``: the configuration checked the way a server uses it
(``config_checks``), and why this server would accept or refuse a given token
(``token_verdict``). Above the services, like the CLI: it loads keys, settings and the
database the way ``taskgate.runtime`` does, with the runtime's own functions."""
