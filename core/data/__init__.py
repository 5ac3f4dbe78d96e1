"""Data: managed databases as Swarm services, and backups streamed to S3 with retention and
restore. (Issue "Databases and backups" lands here.)"""
