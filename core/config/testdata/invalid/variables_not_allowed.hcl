# Expressions have functions but no variables.
# expect: 3:12 Variables not allowed
scope    = var.scope
name     = "node1"
data_dir = "/data"
