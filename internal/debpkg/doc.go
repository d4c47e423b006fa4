// Package debpkg holds the test of the Debian package `make package` builds (packaging/): it
// installs, upgrades, removes and purges the package on the machine it runs on, as root. It is
// built with the debpkg tag and run alone by `make test-package`: while the package is installed,
// /etc/pgimaged/plugins.lock.hcl applies to every pgimaged started without a configuration.
package debpkg
