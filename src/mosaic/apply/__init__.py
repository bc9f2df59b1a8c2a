"""`mosaic fleet apply`: make the running fleet match the roster, touching nothing else.

    plan.py     pure: roster settings + recorded settings + what runs -> the plan
    execute.py  reads what runs, and carries the plan out under the restart lock
"""
