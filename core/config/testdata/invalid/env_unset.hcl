# env() of a variable that is not set names the variable.
# expect: 11:18 environment variable "PGIMAGED_TEST_SURELY_UNSET" is not set
scope    = "batman"
name     = "node1"
data_dir = "/data"

postgresql {
  authentication {
    superuser {
      username = "postgres"
      password = env("PGIMAGED_TEST_SURELY_UNSET")
    }
  }
}
