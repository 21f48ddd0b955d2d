"""`manage.py seed`: the plan catalog, a staff login and demo customers with a believable history.

payments is the top layer, so seeding lives here and may use the services of every app.
"""
