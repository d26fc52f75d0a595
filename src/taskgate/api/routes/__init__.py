"""One router per area; each declares its whole security policy where it is created."""
