# Option values in list form, and the elements of a list or map option, must be scalars.
# expect: 10:24 entry "value" of option "max-rate": value must be a string, number or bool
# expect: 11:30 option "checkpoint": value must be a string, number or bool
# expect: 11:42 Invalid option
scope    = "batman"
name     = "node1"
data_dir = "/data"

method "basebackup" {
  max-rate = { value = ["100M"] }
  options  = [{ checkpoint = ["fast"] }, 5]
}
