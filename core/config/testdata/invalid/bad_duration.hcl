# Durations without a unit, with an unknown unit, and negative.
# expect: 8:13 "10x" is not a duration
# expect: 9:13 "30" is not a duration
# expect: 13:16 retry_wait: the duration must be longer than zero
scope     = "batman"
name      = "node1"
data_dir  = "/data"
loop_wait = "10x"
ttl       = 30

method "slow" {
  command    = "/bin/true"
  retry_wait = "-5s"
}
