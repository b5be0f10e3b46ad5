"""How requests reach Claude: the backends the job engine drives, and the one SDK-error map."""
