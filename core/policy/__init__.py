"""An app's policy: what widens what it may reach, honoured only at an admin's word.

``extract`` reads the policy out of an app.yml, ``diff`` compares the accepted policy with
the one a ref proposes, ``gate`` refuses a widening everywhere app.yml is read.
"""
