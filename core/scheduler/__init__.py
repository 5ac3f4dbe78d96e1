"""Scheduler: jobs rebuilt from config at every start (backups, certificate checks,
reports). (Lands with the first capability that needs one.)"""
