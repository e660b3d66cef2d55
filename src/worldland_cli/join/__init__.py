"""`worldland join` and `worldland reset`: doctor's other half.

join = check -> plan -> apply through a journal -> check again. Each requirement that is not
met plans the actions that meet it (:mod:`.actions`), in the seed's order (:mod:`.plan`);
every action is recorded in the journal before and after it runs, and every file it touches
is backed up first (:mod:`.journal`, certbot's reverter is the model), so an interrupted
join continues where it stopped and ``worldland reset`` undoes it byte for byte
(:mod:`.apply`).
"""
