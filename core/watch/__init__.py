"""Watch: Docker events and periodic checks become alerts (crash loops, nodes down, disks
full), de-duplicated and closed by a recovery post. (Issue "Servers and alerts" lands here.)"""
